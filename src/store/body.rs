//! Object bodies of the embedded store, read in 1 MiB chunks.
//!
//! s3s-fs streams a GET's body in 4 KiB reads through tokio's file type, each read a trip to
//! the blocking pool and back: 262,000 reads, 1.4 million futex calls and 6.4-7.2 s for 1 GiB
//! (the store's CPU 5.4-6.0 s, most of it waking threads). Here each chunk is one positional
//! read of 1 MiB on the blocking pool, and the next is read while the last is being sent.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use s3s::StdError;
use s3s::stream::{ByteStream, RemainingLength};

/// The size of each read.
const CHUNK: u64 = 1024 * 1024;

/// `len` bytes of `file` from `offset`, as a body.
pub(super) struct FileBody {
    file: Arc<std::fs::File>,
    /// Where the next read starts.
    next_at: u64,
    /// Bytes not yet read.
    unread: u64,
    /// Bytes not yet given out.
    left: u64,
    reading: Option<tokio::task::JoinHandle<std::io::Result<Bytes>>>,
}

impl FileBody {
    pub(super) fn new(file: std::fs::File, offset: u64, len: u64) -> Self {
        let mut body = Self {
            file: Arc::new(file),
            next_at: offset,
            unread: len,
            left: len,
            reading: None,
        };
        body.read_next();
        body
    }

    /// Starts reading the next chunk, if any is left.
    fn read_next(&mut self) {
        if self.unread == 0 {
            return;
        }
        let (file, at, len) = (self.file.clone(), self.next_at, self.unread.min(CHUNK));
        self.next_at += len;
        self.unread -= len;
        self.reading = Some(tokio::task::spawn_blocking(move || read_at(&file, at, len)));
    }
}

fn read_at(file: &std::fs::File, at: u64, len: u64) -> std::io::Result<Bytes> {
    let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    #[cfg(unix)]
    std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, at)?;
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt as _;
        let mut done = 0;
        while done < buf.len() {
            match file.seek_read(&mut buf[done..], at + done as u64)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => done += n,
            }
        }
    }
    Ok(Bytes::from(buf))
}

impl Stream for FileBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let read = match Pin::new(reading).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(read) => read,
        };
        self.reading = None;
        match read {
            Ok(Ok(chunk)) => {
                self.left -= chunk.len() as u64;
                // Read ahead: the disk works while this chunk goes out.
                self.read_next();
                Poll::Ready(Some(Ok(chunk)))
            }
            // The body ends short: the client sees a broken body, never a wrong one.
            Ok(Err(e)) => Poll::Ready(Some(Err(Box::new(e)))),
            Err(e) => Poll::Ready(Some(Err(Box::new(e)))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

impl ByteStream for FileBody {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(usize::try_from(self.left).unwrap_or(usize::MAX))
    }
}

/// The first byte of a `Content-Range: bytes FIRST-LAST/TOTAL`.
pub(super) fn range_start(content_range: &str) -> Option<u64> {
    let range = content_range.strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;

    #[test]
    fn content_ranges_give_their_first_byte() {
        assert_eq!(range_start("bytes 0-99/1000"), Some(0));
        assert_eq!(range_start("bytes 900-999/1000"), Some(900));
        assert_eq!(range_start("900-999/1000"), None);
        assert_eq!(range_start("bytes x-1/2"), None);
    }

    #[tokio::test]
    async fn a_body_is_the_range_asked_for_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(2 * CHUNK + 123)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        for (offset, len) in [(0, data.len() as u64), (7, CHUNK + 5), (100, 0)] {
            let body = FileBody::new(std::fs::File::open(&path).unwrap(), offset, len);
            assert_eq!(body.remaining_length().exact(), Some(len as usize));
            let chunks: Vec<Bytes> = body.map(|c| c.unwrap()).collect().await;
            assert!(chunks.iter().all(|c| c.len() as u64 <= CHUNK));
            let got: Vec<u8> = chunks.concat();
            let start = offset as usize;
            assert!(got == data[start..start + len as usize], "{offset}+{len}");
        }
    }

    #[tokio::test]
    async fn a_file_shorter_than_said_breaks_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [1u8; 10]).unwrap();
        let body = FileBody::new(std::fs::File::open(&path).unwrap(), 0, 20);
        let items: Vec<_> = body.collect().await;
        assert!(items.last().unwrap().is_err());
    }
}
