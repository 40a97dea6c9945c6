//! The reader thread: the input's rows into a channel bounded by rows and by bytes, so
//! memory does not grow with the number or the size of rows waiting for a request slot.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::input::{Row, RowReader};

/// The rows of the input, read by a thread into a bounded channel.
pub(crate) struct Reader {
    pub rows: mpsc::Receiver<Vec<ReadRow>>,
    /// Returns the error that stopped the reader, if any.
    pub thread: std::thread::JoinHandle<Option<String>>,
    /// The bytes the reader may still read ahead; closed to release a waiting reader.
    pub bytes_left: Arc<Semaphore>,
}

/// A row and its share of [`READ_AHEAD_BYTES`], held until its requests are answered and
/// their lines handed to the writer.
pub(crate) type ReadRow = (Row, OwnedSemaphorePermit);

/// The weight ([`Row::weight`]) of the rows read but not yet answered, at most: the channel
/// is bounded by bytes as well as by rows, so memory does not grow with the size of rows (a
/// row heavier than this goes alone).
const READ_AHEAD_BYTES: usize = 16 << 20;

/// Reads the first `bytes` bytes of the job's input on a thread into a bounded channel.
pub(crate) fn spawn_reader(job: &crate::job::Job, bytes: u64) -> Reader {
    let (path, id_column, limit) = (job.input.clone(), job.id_column.clone(), job.limit_rows);
    let delimiter = job.delimiter;
    // Rows travel in chunks: one hand-over (and at most one thread wake-up) per chunk.
    const CHUNK: usize = 64;
    let (tx, rx) = mpsc::channel::<Vec<ReadRow>>(16);
    let bytes_left = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let runtime = tokio::runtime::Handle::current();
    let shared = bytes_left.clone();
    let thread = std::thread::spawn(move || {
        let bytes_left = shared;
        let reader = match RowReader::open_with(&path, id_column.as_deref(), delimiter, bytes) {
            Ok(r) => r,
            Err(e) => return Some(e.to_string()),
        };
        let mut chunk = Vec::with_capacity(CHUNK);
        for (i, row) in reader.enumerate() {
            if limit.is_some_and(|n| i as u64 >= n) {
                break;
            }
            let row = match row {
                Ok(row) => row,
                Err(e) => return Some(e.to_string()),
            };
            let weight = row.weight().clamp(1, READ_AHEAD_BYTES) as u32;
            let share = match bytes_left.clone().try_acquire_many_owned(weight) {
                Ok(share) => share,
                Err(_) => {
                    // Hand over the rows read so far, then wait for answered rows' bytes.
                    if !chunk.is_empty() {
                        let part = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        if tx.blocking_send(part).is_err() {
                            return None;
                        }
                    }
                    match runtime.block_on(bytes_left.clone().acquire_many_owned(weight)) {
                        Ok(share) => share,
                        Err(_) => return None,
                    }
                }
            };
            chunk.push((row, share));
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                if tx.blocking_send(full).is_err() {
                    return None;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
        None
    });
    Reader {
        rows: rx,
        thread,
        bytes_left,
    }
}
