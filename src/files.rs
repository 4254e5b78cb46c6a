//! Files only the service's user may read. The database, the lock, the
//! generated TLS key and certificate, the secrets key and every backup are
//! created with mode 0600 in a data dir of mode 0700, whatever the umask; ones
//! an older version or a hand-made setup left open are tightened at start.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::Error;

/// Group and other bits: none of them may be set on what wabridge keeps.
const OPEN_BITS: u32 = 0o077;

/// Creates the data dir (0700), or makes an existing one private: a dir that
/// lets others in is tightened to 0700 when we may change it, refused otherwise.
pub fn private_dir(dir: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::Startup(format!("cannot create data dir {}: {e}", dir.display())))?;
    tighten(dir, 0o700, "data dir")
}

/// Makes an existing file private (0600); nothing when it does not exist.
pub fn private_file(path: &Path) -> Result<(), Error> {
    tighten(path, 0o600, "file")
}

/// Opens `path` for writing, created 0600 if missing and tightened if not.
pub fn open_private(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Startup(format!("cannot create {}: {e}", path.display())))?;
    private_file(path)?;
    Ok(file)
}

/// Creates a new file of mode 0600 holding `bytes`, flushed to disk; fails if
/// `path` exists.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(file)
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn tighten(path: &Path, mode: u32, what: &str) -> Result<(), Error> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Startup(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let found = meta.permissions().mode() & 0o777;
    if !too_open(found) {
        return Ok(());
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        Ok(()) => {
            tracing::warn!(path = %path.display(), from = %format!("{found:o}"), to = %format!("{mode:o}"),
                "{what} could be read by other users; tightened");
            Ok(())
        }
        Err(e) => Err(Error::Startup(refusal(path, found, mode, what, &e))),
    }
}

/// Whether a mode lets anyone but the owner in.
fn too_open(mode: u32) -> bool {
    mode & OPEN_BITS != 0
}

fn refusal(path: &Path, found: u32, mode: u32, what: &str, e: &io::Error) -> String {
    format!(
        "{what} {} has mode {found:o}: other users can reach the secrets wabridge keeps there, and wabridge cannot change that ({e}); as its owner or root run `chmod {mode:o} {}` (and `chown` it to the user wabridge runs as)",
        path.display(),
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn only_owner_bits_are_private() {
        assert!(!too_open(0o700));
        assert!(!too_open(0o600));
        assert!(!too_open(0o400));
        assert!(too_open(0o755));
        assert!(too_open(0o640));
        assert!(too_open(0o702));
    }

    #[test]
    fn an_open_dir_and_file_are_tightened_and_a_new_file_is_born_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("wabridge.redb");
        fs::write(&db, b"x").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();

        private_dir(&dir).unwrap();
        private_file(&db).unwrap();
        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(mode_of(&db), 0o600);

        let fresh = dir.join("wabridge.lock");
        open_private(&fresh).unwrap();
        assert_eq!(mode_of(&fresh), 0o600);
        let key = dir.join("secrets.key");
        write_new_private(&key, &[1; 32]).unwrap();
        assert_eq!(mode_of(&key), 0o600);
        assert!(write_new_private(&key, &[2; 32]).is_err(), "never replaces");
        assert_eq!(fs::read(&key).unwrap(), [1; 32]);
    }

    #[test]
    fn a_missing_data_dir_is_created_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/data");
        private_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir), 0o700);
    }

    #[test]
    fn the_refusal_names_the_path_and_the_fix() {
        let e = io::Error::from_raw_os_error(1);
        let text = refusal(Path::new("/srv/wa"), 0o777, 0o700, "data dir", &e);
        assert!(text.contains("/srv/wa"), "{text}");
        assert!(text.contains("mode 777"), "{text}");
        assert!(text.contains("chmod 700 /srv/wa"), "{text}");
    }
}
