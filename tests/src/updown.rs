//! An updown script for a test: it appends one line per run to a record file, which the
//! test reads back. Its directory under /var/run is removed on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

pub struct UpdownRecorder {
    pub dir: PathBuf,
    /// The script to name in `Updown=`.
    pub script: PathBuf,
    pub record: PathBuf,
}

impl UpdownRecorder {
    /// A script (mode 0700, as the parent requires) that appends `line` (shell words,
    /// `$PLUTO_*` expanded) to the record and then runs `after` (more shell, or nothing).
    pub fn new(tag: &str, line: &str, after: &str) -> Result<UpdownRecorder, String> {
        let dir = PathBuf::from(format!("/var/run/fzike{}{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let record = dir.join("record");
        let script = dir.join("updown.sh");
        let text = format!(
            "#!/bin/sh\necho \"{line}\" >> {}\n{after}",
            record.display()
        );
        std::fs::write(&script, text).map_err(|e| format!("{}: {e}", script.display()))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", script.display()))?;
        Ok(UpdownRecorder {
            dir,
            script,
            record,
        })
    }

    /// What the runs recorded so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.record).unwrap_or_default()
    }

    /// The record once `done` holds of it, or when `timeout` has passed.
    pub fn wait(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        crate::wait_until(timeout, || done(&self.text()));
        self.text()
    }
}

impl Drop for UpdownRecorder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
