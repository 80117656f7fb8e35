//! Which bytes of an object a download still needs, and how it splits them between
//! connections.
//!
//! A big download can run as several ranged GETs side by side, each writing its own part of
//! the file; an interrupted one then leaves holes, and its record notes the spans on disk.
//!
//! Whether that is faster depends on where the server is. Over a network, one connection
//! carries at most its window per round trip (and S3 limits each connection), so big
//! downloads from a remote server take [`REMOTE_RANGES`], as aws-cli (ten requests in flight)
//! and rclone do: through a proxy capping each connection at 40 MiB/s with 25 ms each way
//! (`benches/elsewhere.sh`, 256 MiB), four ranges took 1.93 s, eight 1.14 s, aws-cli 1.50. On this
//! machine there is no round trip to hide, and the server needs the CPU the client would
//! spend: 1 GiB from SeaweedFS on loopback (2 cores, 12 rounds in shuffled order, medians)
//! took 0.72 s to disk and 0.71 s to tmpfs in one stream, 0.86 and 0.90 in two ranges, 0.98
//! and 1.07 in four. So a server on this machine (the embedded store, a local MinIO) gets one.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Ranges a big download from a server elsewhere is split into, unless the user said.
pub(crate) const REMOTE_RANGES: usize = 8;

/// The most ranges a user can ask for.
pub const MAX_RANGES: usize = 16;

/// The ranges a download is split into: what the user asked for (`None`: one from a server on
/// this machine, [`REMOTE_RANGES`] from one elsewhere), within 1..=[`MAX_RANGES`].
pub(crate) fn ranges_for(asked: Option<usize>, server_is_local: bool) -> usize {
    let automatic = if server_is_local { 1 } else { REMOTE_RANGES };
    asked.unwrap_or(automatic).clamp(1, MAX_RANGES)
}

/// The connections a client's downloads may open beyond one each, shared by all of them:
/// enough for one download of [`MAX_RANGES`]. Without a shared cap, `get -r` of many big files
/// from a remote server would open files in flight × ranges connections (32 by default).
pub(crate) const SHARED_EXTRA: usize = MAX_RANGES - 1;

/// The extra connections of a client's downloads (see [`SHARED_EXTRA`]).
pub(crate) struct ExtraConnections(Arc<Semaphore>);

impl ExtraConnections {
    pub(crate) fn new(extra: usize) -> Self {
        Self(Arc::new(Semaphore::new(extra)))
    }

    /// Up to `wanted` extra connections, as many as are free now, held until the permit is
    /// dropped. It never waits: a download that finds none free runs in one stream rather
    /// than queue behind the others.
    pub(crate) fn take(&self, wanted: usize) -> Option<OwnedSemaphorePermit> {
        let free = wanted.min(self.0.available_permits());
        // Another download may take some in between: then ask for fewer.
        (1..=free)
            .rev()
            .find_map(|n| self.0.clone().try_acquire_many_owned(n as u32).ok())
    }
}

/// Which ranges each connection fetches, in turn, when `ranges` ranges share `connections`
/// connections: the first ranges one each, then each next range on the connection that
/// fetched the one `connections` before it (by index into the ranges).
pub(crate) fn lanes(ranges: usize, connections: usize) -> Vec<Vec<usize>> {
    let connections = connections.clamp(1, ranges.max(1));
    let mut lanes = vec![Vec::new(); connections.min(ranges)];
    for i in 0..ranges {
        lanes[i % connections].push(i);
    }
    lanes
}

/// The smallest range worth a connection of its own: a download splits only when each range
/// gets at least this much.
pub(crate) const MIN_RANGE: u64 = 16 * 1024 * 1024;

/// A span of bytes, `[start, end)`.
pub(crate) type Span = (u64, u64);

/// `spans` sorted, empty ones dropped, overlapping and adjacent ones merged.
pub(crate) fn merged(spans: impl IntoIterator<Item = Span>) -> Vec<Span> {
    let mut spans: Vec<Span> = spans.into_iter().filter(|(a, b)| a < b).collect();
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// What `[0, size)` still lacks once `have` is there (spans beyond `size` are ignored).
pub(crate) fn gaps(size: u64, have: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut at = 0;
    for (a, b) in merged(have.iter().map(|&(a, b)| (a.min(size), b.min(size)))) {
        if a > at {
            out.push((at, a));
        }
        at = at.max(b);
    }
    if at < size {
        out.push((at, size));
    }
    out
}

/// Splits `gaps` into at most `ranges` ranges to fetch side by side: the largest is cut in
/// two while there is room and both halves get at least `min` bytes. Halves end on a MiB, so
/// that writes stay aligned. In order of offset.
pub(crate) fn split(gaps: &[Span], ranges: usize, min: u64) -> Vec<Span> {
    const ALIGN: u64 = 1024 * 1024;
    let mut out = gaps.to_vec();
    while out.len() < ranges {
        let Some((i, &(a, b))) = out.iter().enumerate().max_by_key(|(_, (a, b))| b - a) else {
            break;
        };
        let mid = a + (b - a) / 2 / ALIGN * ALIGN;
        if mid - a < min || b - mid < min {
            break;
        }
        out[i] = (a, mid);
        out.insert(i + 1, (mid, b));
    }
    out
}

/// The CRC32C of a whole made of consecutive pieces, from each piece's CRC32C and length.
pub(crate) fn combined_crc32c(pieces: &[(u32, u64)]) -> Option<u32> {
    let (&(first, _), rest) = pieces.split_first()?;
    Some(rest.iter().fold(first, |crc, &(next, len)| {
        crc_fast::checksum_combine(
            crc_fast::CrcAlgorithm::Crc32Iscsi,
            u64::from(crc),
            u64::from(next),
            len,
        ) as u32
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1024 * 1024;

    #[test]
    fn local_servers_get_one_stream_unless_asked() {
        assert_eq!(ranges_for(None, true), 1);
        assert_eq!(ranges_for(None, false), REMOTE_RANGES);
        assert_eq!(ranges_for(Some(2), true), 2);
        assert_eq!(ranges_for(Some(0), false), 1);
        assert_eq!(ranges_for(Some(99), false), MAX_RANGES);
    }

    #[test]
    fn spans_merge_and_leave_gaps() {
        assert_eq!(
            merged([(5, 9), (0, 2), (2, 3), (8, 12), (4, 4)]),
            [(0, 3), (5, 12)]
        );
        assert_eq!(gaps(10, &[]), [(0, 10)]);
        assert_eq!(gaps(10, &[(0, 4), (6, 8)]), [(4, 6), (8, 10)]);
        assert_eq!(gaps(10, &[(2, 20)]), [(0, 2)]);
        assert_eq!(gaps(10, &[(0, 10)]), Vec::<Span>::new());
        assert_eq!(gaps(0, &[]), Vec::<Span>::new());
    }

    #[test]
    fn big_gaps_split_into_aligned_ranges() {
        // 1 GiB: two halves.
        assert_eq!(
            split(&[(0, 1024 * M)], 2, 16 * M),
            [(0, 512 * M), (512 * M, 1024 * M)]
        );
        // Too small to split.
        assert_eq!(split(&[(0, 31 * M)], 2, 16 * M), [(0, 31 * M)]);
        // The halves end on a MiB.
        let s = split(&[(0, 100 * M + 7)], 2, 16 * M);
        assert_eq!(s, [(0, 50 * M), (50 * M, 100 * M + 7)]);
        // Already two gaps: nothing more to split with two ranges.
        assert_eq!(split(&[(0, 64 * M), (96 * M, 128 * M)], 2, 16 * M).len(), 2);
        // One gap of a resumed download: the largest is split, in order of offset.
        assert_eq!(
            split(&[(10, 20), (64 * M, 192 * M)], 3, 16 * M),
            [(10, 20), (64 * M, 128 * M), (128 * M, 192 * M)]
        );
        // Four ranges cover the gap exactly.
        let s = split(&[(3, 1000 * M)], 4, 16 * M);
        assert_eq!(s.len(), 4);
        assert_eq!(merged(s.iter().copied()), [(3, 1000 * M)]);
    }

    #[test]
    fn more_ranges_than_connections_take_turns() {
        assert_eq!(lanes(4, 4), [vec![0], vec![1], vec![2], vec![3]]);
        assert_eq!(lanes(4, 2), [vec![0, 2], vec![1, 3]]);
        assert_eq!(lanes(3, 1), [vec![0, 1, 2]]);
        assert_eq!(lanes(2, 0), [vec![0, 1]]);
        assert_eq!(lanes(2, 5), [vec![0], vec![1]]);
        assert_eq!(lanes(0, 2), Vec::<Vec<usize>>::new());
    }

    #[test]
    fn downloads_share_their_extra_connections() {
        let extra = ExtraConnections::new(SHARED_EXTRA);
        let first = extra.take(3).expect("all are free");
        assert_eq!(first.num_permits(), 3);
        // One download asking for all of them gets what is left, at once.
        let second = extra.take(MAX_RANGES).expect("some are free");
        assert_eq!(second.num_permits(), SHARED_EXTRA - 3);
        // None left: the next runs in one stream, without waiting.
        assert!(extra.take(1).is_none());
        assert!(extra.take(0).is_none());
        // Given back when a download ends.
        drop(first);
        assert_eq!(extra.take(8).map(|p| p.num_permits()), Some(3));
    }

    #[test]
    fn a_crc_is_combined_from_its_pieces() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let crc = |b: &[u8]| crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, b) as u32;
        let (a, rest) = data.split_at(40_000);
        let (b, c) = rest.split_at(1);
        let pieces = [
            (crc(a), a.len() as u64),
            (crc(b), b.len() as u64),
            (crc(c), c.len() as u64),
        ];
        assert_eq!(combined_crc32c(&pieces), Some(crc(&data)));
        assert_eq!(combined_crc32c(&pieces[..1]), Some(crc(a)));
        assert_eq!(combined_crc32c(&[]), None);
    }
}
