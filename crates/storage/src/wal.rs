//! The pages each commit wrote, read back from an object's write-ahead log, and a database rebuilt
//! from them. This is how cluster mode ships an object's commits to the cluster database and
//! restores the object on another node: the KV data and SQL tables share one database, so one
//! mechanism carries both, atomically, commit by commit.
//!
//! The log's format is SQLite's (<https://sqlite.org/fileformat2.html#walformat>): a 32-byte
//! header, then frames of a 24-byte header and one page. A frame whose "database size" is not
//! zero ends a transaction. Frames belong to the log's current generation when their salts match
//! the header's and their checksums continue the chain; a checkpoint restarts the log with new
//! salts, and whatever follows the last valid commit frame is not committed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::log::wal_path;

const HEADER_BYTES: usize = 32;
const FRAME_HEADER_BYTES: usize = 24;
/// Magic numbers of the log's header: checksums over little- or big-endian words.
const MAGIC_LITTLE_ENDIAN: u32 = 0x377f_0682;
const MAGIC_BIG_ENDIAN: u32 = 0x377f_0683;
/// Pages are powers of two from 512 to 65,536 bytes.
const PAGE_SIZES: std::ops::RangeInclusive<u32> = 512..=65_536;

/// What one commit wrote: the new content of each page it changed, and the database's size after
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPages {
    /// Bytes per page.
    pub page_size: u32,
    /// The database's size after the commit, in pages.
    pub database_pages: u32,
    /// Page numbers (from 1) and their content, in page order.
    pub pages: Vec<(u32, Vec<u8>)>,
}

impl CommitPages {
    /// The commit as bytes: page size, database size and page count, then each page's number and
    /// content (all numbers big-endian, four bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.pages.len() * (4 + self.page_size as usize));
        for number in [self.page_size, self.database_pages, self.pages.len() as u32] {
            out.extend_from_slice(&number.to_be_bytes());
        }
        for (page, data) in &self.pages {
            out.extend_from_slice(&page.to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// Reads back what [`CommitPages::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<CommitPages> {
        let corrupt = |why: &str| StorageError::CorruptCommit(why.to_owned());
        if bytes.len() < 12 {
            return Err(corrupt("truncated"));
        }
        let (page_size, database_pages, count) = (be(bytes, 0), be(bytes, 4), be(bytes, 8));
        if !PAGE_SIZES.contains(&page_size) || !page_size.is_power_of_two() {
            return Err(corrupt("page size"));
        }
        let entry = 4 + page_size as usize;
        if bytes.len() != 12 + count as usize * entry {
            return Err(corrupt("length"));
        }
        let pages = bytes[12..]
            .chunks_exact(entry)
            .map(|chunk| (be(chunk, 0), chunk[4..].to_vec()))
            .collect::<Vec<_>>();
        if pages
            .iter()
            .any(|(page, _)| *page == 0 || *page > database_pages)
        {
            return Err(corrupt("page number"));
        }
        Ok(CommitPages {
            page_size,
            database_pages,
            pages,
        })
    }
}

/// Where reading an object's log got to: the commits after it are the ones not yet read.
#[derive(Debug)]
pub struct WalCursor {
    wal: PathBuf,
    /// The generation read so far (the header's salts); a new one starts from its first frame.
    salts: Option<[u32; 2]>,
    /// The frame after the last commit read.
    next_frame: u64,
    /// The checksum chain up to that frame.
    checksum: [u32; 2],
}

impl WalCursor {
    /// A cursor at the start of the log of the database at `database`.
    pub fn for_database(database: &Path) -> WalCursor {
        WalCursor {
            wal: wal_path(database),
            salts: None,
            next_frame: 0,
            checksum: [0, 0],
        }
    }

    /// The commits written to the log since the last call, oldest first, each with the last
    /// version of every page it wrote. Frames of a transaction still being written are left for
    /// the next call. Call it after every commit and before every checkpoint: a checkpoint lets
    /// the log start again, and a commit not read by then is only in the database file.
    pub fn read_commits(&mut self) -> Result<Vec<CommitPages>> {
        let context = || format!("read {}", self.wal.display());
        let mut file = match File::open(&self.wal) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(StorageError::io(context(), error)),
        };
        let mut header = [0u8; HEADER_BYTES];
        if !read_full(&mut file, &mut header).map_err(|e| StorageError::io(context(), e))? {
            return Ok(Vec::new());
        }
        let magic = be(&header, 0);
        let big_endian = match magic {
            MAGIC_BIG_ENDIAN => true,
            MAGIC_LITTLE_ENDIAN => false,
            _ => return Ok(Vec::new()),
        };
        let page_size = be(&header, 8);
        let salts = [be(&header, 16), be(&header, 20)];
        let header_checksum = checksum([0, 0], &header[..24], big_endian);
        if header_checksum != [be(&header, 24), be(&header, 28)] || !PAGE_SIZES.contains(&page_size)
        {
            return Ok(Vec::new());
        }
        if self.salts != Some(salts) {
            self.salts = Some(salts);
            self.next_frame = 0;
            self.checksum = header_checksum;
        }
        let frame_bytes = (FRAME_HEADER_BYTES + page_size as usize) as u64;
        file.seek(SeekFrom::Start(
            HEADER_BYTES as u64 + self.next_frame * frame_bytes,
        ))
        .map_err(|e| StorageError::io(context(), e))?;
        let mut frame = vec![0u8; frame_bytes as usize];
        let mut running = self.checksum;
        let mut pending: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let mut commits = Vec::new();
        let mut index = self.next_frame;
        while read_full(&mut file, &mut frame).map_err(|e| StorageError::io(context(), e))? {
            if [be(&frame, 8), be(&frame, 12)] != salts {
                break;
            }
            running = checksum(running, &frame[..8], big_endian);
            running = checksum(running, &frame[FRAME_HEADER_BYTES..], big_endian);
            if running != [be(&frame, 16), be(&frame, 20)] {
                break;
            }
            index += 1;
            pending.insert(be(&frame, 0), frame[FRAME_HEADER_BYTES..].to_vec());
            let database_pages = be(&frame, 4);
            if database_pages != 0 {
                commits.push(CommitPages {
                    page_size,
                    database_pages,
                    pages: std::mem::take(&mut pending).into_iter().collect(),
                });
                self.next_frame = index;
                self.checksum = running;
            }
        }
        Ok(commits)
    }
}

/// Writes a fresh database file at `database` holding what `commits` (from the first, in order)
/// wrote: how a node that claims an object restores it. Any log beside it is removed first, as it
/// belongs to another history.
pub fn restore<'a>(
    database: &Path,
    commits: impl IntoIterator<Item = &'a CommitPages>,
) -> Result<()> {
    let context = || format!("restore {}", database.display());
    match std::fs::remove_file(wal_path(database)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(StorageError::io(context(), error));
        }
        _ => {}
    }
    if let Some(dir) = database.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(context(), e))?;
    }
    let mut file = File::create(database).map_err(|e| StorageError::io(context(), e))?;
    let mut size = 0u64;
    for commit in commits {
        for (page, data) in &commit.pages {
            file.seek(SeekFrom::Start(
                u64::from(page - 1) * u64::from(commit.page_size),
            ))
            .and_then(|_| file.write_all(data))
            .map_err(|e| StorageError::io(context(), e))?;
        }
        size = u64::from(commit.database_pages) * u64::from(commit.page_size);
    }
    file.set_len(size)
        .and_then(|()| file.sync_all())
        .map_err(|e| StorageError::io(context(), e))
}

/// SQLite's log checksum: two running sums over pairs of 32-bit words.
fn checksum(seed: [u32; 2], bytes: &[u8], big_endian: bool) -> [u32; 2] {
    let [mut s0, mut s1] = seed;
    for pair in bytes.chunks_exact(8) {
        let word = |at: usize| {
            let raw = [pair[at], pair[at + 1], pair[at + 2], pair[at + 3]];
            if big_endian {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            }
        };
        s0 = s0.wrapping_add(word(0)).wrapping_add(s1);
        s1 = s1.wrapping_add(word(4)).wrapping_add(s0);
    }
    [s0, s1]
}

fn be(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Fills `buffer`; false if the file ended first.
fn read_full(file: &mut File, buffer: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => return Ok(false),
            read => filled += read,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
