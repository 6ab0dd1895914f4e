//! isakmpd.conf: `Conf::parse`, and for a text that parses, the documented round trip
//! (`Conf::parse(&c.dump())` gives the same explicit values), every lookup on what was
//! read, and the policy built from it (`Policy::from_conf`, as the daemon does at start).

use ike::conf::Conf;
use ike::policy::Policy;

pub fn conf(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(c) = Conf::parse(&text) else {
        return;
    };
    let dump = c.dump();
    let again = Conf::parse(&dump);
    let Ok(again) = again else {
        panic!("dump does not parse again: {again:?}\n{dump}");
    };
    assert_eq!(again.dump(), dump, "dump of the re-parsed text differs");
    for section in c.sections() {
        for tag in c.tags(section) {
            let _ = c.get_str(section, tag);
            let _ = c.get_num(section, tag);
            let _ = c.get_list(section, tag);
            assert_eq!(
                c.get_str(section, tag),
                again.get_str(section, tag),
                "[{section}]:{tag} differs after the round trip"
            );
        }
    }
    let _ = Policy::from_conf(&c);
}
