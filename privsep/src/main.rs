//! isakmpd: the parent by default; a re-executed copy becomes the child or a helper.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match privsep::cmdline::parse(args.clone()) {
        Ok(o) => o,
        Err(e) => {
            eprint!("isakmpd: {e}\n{}", privsep::cmdline::USAGE);
            std::process::exit(privsep::cmdline::EXIT_USAGE);
        }
    };
    let role = std::env::var(privsep::ROLE_ENV).unwrap_or_default();
    let status = match role.as_str() {
        "child" => privsep::child::main(opts),
        "helper" => privsep::child::helper_main(),
        _ => privsep::parent::main(opts, args),
    };
    std::process::exit(status);
}
