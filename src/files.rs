//! Files only the service's user may read. The database, the lock, the
//! generated TLS key and certificate, the secrets key and every backup are
//! created with mode 0600 in a data dir of mode 0700, whatever the umask; ones
//! an older version or a hand-made setup left open are tightened at start.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Group and other bits: none of them may be set on what wabridge keeps.
const OPEN_BITS: u32 = 0o077;

/// The database's name in the data dir: a dir holding it is wabridge's own.
const DB_FILE: &str = "wabridge.redb";
/// Group and other may not pass this bit through to a shared dir (/tmp).
const STICKY: u32 = 0o1000;

/// Creates the data dir (0700), or makes an existing one private: a dir that
/// lets others in is tightened to 0700 when it is wabridge's (see
/// `ours_to_tighten`) and we may change it, refused otherwise.
pub fn private_dir(dir: &Path) -> Result<(), Error> {
    let existed = dir.exists();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::Startup(format!("cannot create data dir {}: {e}", dir.display())))?;
    if existed {
        if let Some(found) = shared_dir(dir)? {
            return Err(Error::Startup(refuse_shared(dir, found)));
        }
    }
    tighten(dir, 0o700, "data dir")
}

/// The mode of an existing, open dir that is not wabridge's to tighten: one
/// with the sticky bit (/tmp), or one holding other files but no database
/// (/srv, /var/lib). Chmod 0700 there, run as root, would lock the host's
/// other users and services out. `None`: private already, or ours.
fn shared_dir(dir: &Path) -> Result<Option<u32>, Error> {
    let read = |e: io::Error| Error::Startup(format!("cannot read {}: {e}", dir.display()));
    let found = fs::metadata(dir).map_err(read)?.permissions().mode() & 0o7777;
    if !too_open(found) {
        return Ok(None);
    }
    if found & STICKY != 0 {
        return Ok(Some(found));
    }
    if dir.join(DB_FILE).exists() {
        return Ok(None);
    }
    let empty = fs::read_dir(dir).map_err(read)?.next().is_none();
    Ok((!empty).then_some(found))
}

fn refuse_shared(dir: &Path, found: u32) -> String {
    format!(
        "data dir {} (mode {found:o}) is shared with other users and holds no wabridge.redb, so wabridge will not make it private: use a dir of its own, e.g. --data-dir {}",
        dir.display(),
        dir.join("wabridge").display()
    )
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

/// Creates a new file of mode 0600 holding `bytes`, flushed to disk with its
/// dir entry; fails if `path` exists. It appears whole or not at all (see
/// `write_private_atomic`): a key cut short by a crash would refuse every later
/// start with nothing to restore.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<File> {
    let (temp, file) = write_temp(path, bytes)?;
    // A hard link, unlike a rename, never replaces what is at `path`.
    let linked = match fs::hard_link(&temp, path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        // A filesystem without hard links: nothing was at `path` a moment ago.
        Err(_) if !path.exists() => fs::rename(&temp, path),
        other => other,
    };
    let _ = fs::remove_file(&temp);
    linked?;
    sync_dir(parent_dir(path))?;
    Ok(file)
}

/// Puts `bytes` at `path` whole or not at all: written to a temporary name
/// beside it (0600), flushed, renamed over `path`, and the dir flushed. A crash
/// leaves the old file (or none) and at worst a stray `.tmp`, never a
/// truncated key that a later start would take for the real one.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (temp, _file) = write_temp(path, bytes)?;
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(parent_dir(path))
}

/// `bytes` in a new 0600 file beside `path`, flushed.
fn write_temp(path: &Path, bytes: &[u8]) -> io::Result<(PathBuf, File)> {
    let temp = temp_beside(path);
    // A leftover of an earlier crash: never a file anyone relies on.
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok((temp, file))
}

fn temp_beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The dir a file is in: `.` for a bare name, whose `parent()` is `Some("")`.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
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
        assert!(!temp_beside(&key).exists(), "no temp left behind");
    }

    #[test]
    fn a_shared_dir_is_refused_and_left_as_it_was() {
        let root = tempfile::tempdir().unwrap();
        // Like /srv: other things in it, no database.
        let srv = root.path().join("srv");
        fs::create_dir(&srv).unwrap();
        fs::write(srv.join("www"), b"").unwrap();
        fs::set_permissions(&srv, fs::Permissions::from_mode(0o755)).unwrap();
        let err = private_dir(&srv).unwrap_err().to_string();
        assert!(err.contains(&srv.display().to_string()), "{err}");
        assert!(err.contains("--data-dir"), "{err}");
        assert_eq!(mode_of(&srv), 0o755);

        // Like /tmp: sticky, even when empty.
        let tmp = root.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(private_dir(&tmp).is_err());
        assert_eq!(
            fs::metadata(&tmp).unwrap().permissions().mode() & 0o7777,
            0o1777
        );

        // An empty dir made for wabridge is tightened.
        let empty = root.path().join("empty");
        fs::create_dir(&empty).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&empty).unwrap();
        assert_eq!(mode_of(&empty), 0o700);
    }

    #[test]
    fn an_atomic_write_replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls-key.pem");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        // A stray temp of an earlier crash is no obstacle.
        fs::write(temp_beside(&path), b"half").unwrap();
        write_private_atomic(&path, b"new contents").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new contents");
        assert_eq!(mode_of(&path), 0o600);
        assert!(!temp_beside(&path).exists());
    }

    #[test]
    fn a_bare_name_is_in_the_current_dir() {
        assert_eq!(parent_dir(Path::new("secrets.key")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/a/b")), Path::new("/a"));
        assert_eq!(parent_dir(Path::new("a/b")), Path::new("a"));
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
