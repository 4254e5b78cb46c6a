//! How much free space the data dir keeps in reserve (`--min-free-space`), and
//! whether a reading of the disk is below it.
//!
//! Below the reserve, new events are refused (Meta retries them later) while
//! everything else — recording delivery outcomes, admin changes, retention —
//! still has room. Refusing early is the point: a write that fails half-way for
//! lack of space leaves redb needing to be reopened.

use std::fmt;
use std::str::FromStr;

/// The reserve: a number of bytes, or a share of the filesystem's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinFreeSpace {
    Bytes(u64),
    /// Hundredths of a percent, so `0.5%` is exact.
    Basis(u32),
}

/// What `statvfs` said about the filesystem holding the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes an unprivileged writer may still use (root's reserve excluded).
    pub free: u64,
    pub total: u64,
}

impl MinFreeSpace {
    /// The reserve in bytes on a filesystem of `total` bytes.
    pub fn bytes(self, total: u64) -> u64 {
        match self {
            MinFreeSpace::Bytes(n) => n,
            MinFreeSpace::Basis(b) => {
                u64::try_from(u128::from(total) * u128::from(b) / 10_000).unwrap_or(u64::MAX)
            }
        }
    }

    /// Whether `space` leaves less than the reserve.
    pub fn is_short(self, space: DiskSpace) -> bool {
        space.free < self.bytes(space.total)
    }

    /// Like `is_short`, with hysteresis: once short (`was_short`), still short
    /// until the free space is back above the reserve plus `resume_margin`, so
    /// free space hovering at the reserve does not flip the webhook between
    /// 200 and 503 every second.
    pub fn still_short(self, space: DiskSpace, was_short: bool) -> bool {
        let reserve = self.bytes(space.total);
        if was_short {
            space.free < reserve.saturating_add(resume_margin(reserve))
        } else {
            space.free < reserve
        }
    }

    /// Whether a copy of `size` bytes (an online backup, made in the data dir)
    /// fits in `space` and still leaves the reserve: a backup must not be what
    /// fills the disk the events are stored on.
    pub fn room_for_copy(self, space: DiskSpace, size: u64) -> bool {
        space.free.saturating_sub(self.bytes(space.total)) >= size
    }

    /// Whether a disk that ran full has room enough to try writing again:
    /// the reserve, and never less than `RESUME_FLOOR`. Without this, the few
    /// pages a failed write left would let the reopen's probe pass and the
    /// next webhook fail again, flapping between healthy and failing.
    pub fn room_to_resume(self, space: DiskSpace) -> bool {
        space.free >= self.bytes(space.total).max(RESUME_FLOOR)
    }
}

/// How far above a reserve the free space must come back before new events
/// are taken again: a tenth of the reserve, and at least 8 MiB (none when the
/// reserve is off).
pub fn resume_margin(reserve: u64) -> u64 {
    if reserve == 0 {
        0
    } else {
        (reserve / 10).max(8 * MIB)
    }
}

/// See `MinFreeSpace::room_to_resume`: far more than one batch of ordinary
/// webhooks needs, far less than any disk a gateway runs on.
pub const RESUME_FLOOR: u64 = MIB;

impl Default for MinFreeSpace {
    fn default() -> Self {
        MinFreeSpace::Bytes(64 * MIB)
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

const UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("k", KIB),
    ("kb", 1000),
    ("kib", KIB),
    ("m", MIB),
    ("mb", 1000 * 1000),
    ("mib", MIB),
    ("g", GIB),
    ("gb", 1000 * 1000 * 1000),
    ("gib", GIB),
];

/// Why a `--min-free-space` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseMinFreeSpace {
    #[error("expected a size such as 64MiB, 500MB or 0 (off), or a share such as 2%")]
    Malformed,
    #[error("unknown unit `{0}`: use B, KiB, MiB, GiB (or KB, MB, GB)")]
    Unit(String),
    #[error("a share must be between 0% and 50%")]
    Share,
    #[error("that size does not fit in 64 bits")]
    Overflow,
}

impl FromStr for MinFreeSpace {
    type Err = ParseMinFreeSpace;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if let Some(share) = raw.strip_suffix('%') {
            let basis = parse_hundredths(share.trim()).ok_or(ParseMinFreeSpace::Malformed)?;
            if basis > 5_000 {
                return Err(ParseMinFreeSpace::Share);
            }
            return Ok(MinFreeSpace::Basis(basis));
        }
        let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
        let (number, unit) = raw.split_at(split);
        let number: u64 = number.parse().map_err(|_| ParseMinFreeSpace::Malformed)?;
        let unit = unit.trim().to_ascii_lowercase();
        let scale = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, scale)| *scale)
                .ok_or(ParseMinFreeSpace::Unit(unit))?
        };
        number
            .checked_mul(scale)
            .map(MinFreeSpace::Bytes)
            .ok_or(ParseMinFreeSpace::Overflow)
    }
}

/// `2`, `2.5`, `0.25` as hundredths (`200`, `250`, `25`); at most two decimals.
fn parse_hundredths(s: &str) -> Option<u32> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let frac: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    whole.checked_mul(100)?.checked_add(frac)
}

impl fmt::Display for MinFreeSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MinFreeSpace::Basis(b) if b.is_multiple_of(100) => write!(f, "{}%", b / 100),
            MinFreeSpace::Basis(b) => {
                let hundredths = format!("{:02}", b % 100);
                write!(f, "{}.{}%", b / 100, hundredths.trim_end_matches('0'))
            }
            MinFreeSpace::Bytes(n) => {
                // Exact, so that `config check` shows what serve will use.
                let (scale, unit) = [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")]
                    .into_iter()
                    .find(|(scale, _)| n > 0 && n.is_multiple_of(*scale))
                    .unwrap_or((1, "B"));
                write!(f, "{} {unit}", n / scale)
            }
        }
    }
}

/// `67108864` as `64 MiB`, `1536` as `1.5 KiB`: for logs, pages and errors.
pub fn human_bytes(n: u64) -> String {
    let (scale, unit) = match n {
        n if n >= GIB => (GIB, "GiB"),
        n if n >= MIB => (MIB, "MiB"),
        n if n >= KIB => (KIB, "KiB"),
        _ => return format!("{n} B"),
    };
    // In u128: `n * 10` overflows u64 for n above ~1.8e18 (a reserve of
    // u64::MAX, or a FUSE filesystem reporting near-u64::MAX free).
    let tenths = u128::from(n) * 10 / u128::from(scale);
    if tenths.is_multiple_of(10) {
        format!("{} {unit}", tenths / 10)
    } else {
        format!("{}.{} {unit}", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<MinFreeSpace, ParseMinFreeSpace> {
        s.parse()
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse("64MiB"), Ok(MinFreeSpace::Bytes(64 * MIB)));
        assert_eq!(parse("64 mib"), Ok(MinFreeSpace::Bytes(64 * MIB)));
        assert_eq!(parse("500MB"), Ok(MinFreeSpace::Bytes(500_000_000)));
        assert_eq!(parse("1G"), Ok(MinFreeSpace::Bytes(GIB)));
        assert_eq!(parse("4096"), Ok(MinFreeSpace::Bytes(4096)));
        assert_eq!(parse("0"), Ok(MinFreeSpace::Bytes(0)));
        assert_eq!(parse("1536 B"), Ok(MinFreeSpace::Bytes(1536)));
        assert_eq!(parse("2%"), Ok(MinFreeSpace::Basis(200)));
        assert_eq!(parse("0.5%"), Ok(MinFreeSpace::Basis(50)));
        assert_eq!(parse("2.25 %"), Ok(MinFreeSpace::Basis(225)));
    }

    #[test]
    fn nonsense_is_a_clear_error() {
        assert_eq!(parse(""), Err(ParseMinFreeSpace::Malformed));
        assert_eq!(parse("MiB"), Err(ParseMinFreeSpace::Malformed));
        assert_eq!(parse("-1"), Err(ParseMinFreeSpace::Malformed));
        assert_eq!(
            parse("64 parsecs"),
            Err(ParseMinFreeSpace::Unit("parsecs".into()))
        );
        assert_eq!(parse("51%"), Err(ParseMinFreeSpace::Share));
        assert_eq!(parse("1.234%"), Err(ParseMinFreeSpace::Malformed));
        assert_eq!(parse(".5%"), Err(ParseMinFreeSpace::Malformed));
        assert_eq!(parse("99999999999GiB"), Err(ParseMinFreeSpace::Overflow));
    }

    #[test]
    fn it_shows_as_it_was_given() {
        for s in ["64 MiB", "2%", "0.5%", "0.25%", "0 B", "1536 B", "3 KiB"] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn a_share_is_of_the_filesystem_size() {
        assert_eq!(MinFreeSpace::Basis(200).bytes(1_000_000), 20_000);
        assert_eq!(MinFreeSpace::Basis(5_000).bytes(u64::MAX), u64::MAX / 2);
        assert_eq!(MinFreeSpace::Bytes(7).bytes(1), 7);
    }

    #[test]
    fn short_means_strictly_below_the_reserve() {
        let reserve = MinFreeSpace::Bytes(100);
        assert!(reserve.is_short(DiskSpace {
            free: 99,
            total: 1000
        }));
        assert!(!reserve.is_short(DiskSpace {
            free: 100,
            total: 1000
        }));
        // 0 turns the reserve off: only a completely full disk stops writes.
        assert!(!MinFreeSpace::Bytes(0).is_short(DiskSpace {
            free: 0,
            total: 1000
        }));
        assert!(MinFreeSpace::Basis(1_000).is_short(DiskSpace {
            free: 99,
            total: 1000
        }));
    }

    #[test]
    fn once_short_events_resume_only_with_a_margin_above_the_reserve() {
        let total = 10 * GIB;
        let at = |free| DiskSpace { free, total };
        let reserve = MinFreeSpace::Bytes(64 * MIB);
        assert!(!reserve.still_short(at(64 * MIB), false));
        assert!(reserve.still_short(at(64 * MIB - 1), false));
        // Hovering at the reserve stays refused...
        assert!(reserve.still_short(at(64 * MIB), true));
        assert!(reserve.still_short(at(72 * MIB - 1), true));
        // ...until 8 MiB (more than a tenth of 64 MiB) above it.
        assert!(!reserve.still_short(at(72 * MIB), true));
        // A large reserve: a tenth of it.
        let large = MinFreeSpace::Bytes(GIB);
        assert!(large.still_short(at(GIB + GIB / 10 - 1), true));
        assert!(!large.still_short(at(GIB + GIB / 10), true));
        // Off stays off; a reserve of u64::MAX does not overflow.
        assert!(!MinFreeSpace::Bytes(0).still_short(at(0), true));
        assert!(MinFreeSpace::Bytes(u64::MAX).still_short(at(u64::MAX - 1), true));
    }

    #[test]
    fn a_backup_copy_must_fit_above_the_reserve() {
        let total = 10 * GIB;
        let reserve = MinFreeSpace::Bytes(64 * MIB);
        let at = |free| DiskSpace { free, total };
        assert!(reserve.room_for_copy(at(64 * MIB + 100 * MIB), 100 * MIB));
        assert!(!reserve.room_for_copy(at(64 * MIB + 100 * MIB - 1), 100 * MIB));
        // Already below the reserve: no copy, however small.
        assert!(!reserve.room_for_copy(at(MIB), 1));
        assert!(MinFreeSpace::Bytes(0).room_for_copy(at(5), 5));
    }

    #[test]
    fn a_full_disk_resumes_only_with_real_room() {
        let off = MinFreeSpace::Bytes(0);
        let total = 100 * MIB;
        assert!(!off.room_to_resume(DiskSpace {
            free: 64 * KIB,
            total
        }));
        assert!(off.room_to_resume(DiskSpace { free: MIB, total }));
        let reserve = MinFreeSpace::Bytes(8 * MIB);
        assert!(!reserve.room_to_resume(DiskSpace {
            free: 4 * MIB,
            total
        }));
        assert!(reserve.room_to_resume(DiskSpace {
            free: 8 * MIB,
            total
        }));
    }

    #[test]
    fn byte_counts_read_easily() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(64 * MIB), "64 MiB");
        assert_eq!(human_bytes(12 * MIB + MIB / 2), "12.5 MiB");
        assert_eq!(human_bytes(3 * GIB), "3 GiB");
    }

    #[test]
    fn the_largest_byte_count_reads_without_overflow() {
        // Rounded down, as every reading here is.
        assert_eq!(human_bytes(u64::MAX), "17179869183.9 GiB");
        assert_eq!(human_bytes(u64::MAX / 10 + 1), "1717986918.4 GiB");
    }
}
