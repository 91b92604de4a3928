//! The group table of a version-3 model file: every group's key and Normal/Exponential parameters as one
//! block of fixed-size records, and a hash index over them, so apply maps the file and looks keys up in
//! place.
//!
//! ```text
//! record g, at g * stride (stride = 24 + inline key room, a multiple of 8 from 32 to 128):
//!   f64 a | f64 b | u32 kind | u32 key length | the key, zero-padded, if it fits the room,
//!   else a u64 offset of the key in the spill area that follows the records
//!   kind 0: Normal (a = mean, b = std); 1: Exponential (a = loc, b = scale);
//!   2: any other group (a = its position among the model's other groups, as a u64; b = 0)
//! index: `slots` u64s; a key's home slot is `hash * slots >> 64`, probing goes forward (wrapping) at
//!   most `max_probe` steps; 0 is empty, else (low 32 bits of the hash) << 32 | (group + 1)
//! ```
//!
//! Integers and floats are little-endian and read with `from_le_bytes`, so nothing assumes alignment.
//! A table read from a file is checked once, in one sequential pass with its checksums
//! ([`GroupTable::open`]): every record's kind and key in bounds, every index slot naming a group,
//! probing bounded by the slot count. Lookups then read only in-bounds records and always end.

use std::fs::File;
use std::io;
use std::ops::Range;

pub const KIND_NORMAL: u8 = 0;
pub const KIND_EXPONENTIAL: u8 = 1;
pub const KIND_OTHER: u8 = 2;
/// A record's fixed part, before the key room.
const HEAD: usize = 24;
/// Key room bounds: it holds a spill offset at least; longer keys than the largest room spill.
const MIN_ROOM: usize = 8;
const MAX_ROOM: usize = 104;
/// The hash seed new files are written with (each file stores its own).
pub const SEED: u64 = 0x736d_6264_656e_7333;
/// Checksums are computed over blocks this size, each then walked while it is still in cache.
const BLOCK: usize = 1 << 18;

/// A record's fixed part: the group number, its kind and two parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub group: u32,
    pub kind: u8,
    pub a: f64,
    pub b: f64,
}

/// The key hash the index is built with. Part of the file format: it must never change for a seed.
#[inline]
pub fn hash(seed: u64, key: &[u8]) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    #[inline(always)]
    fn mix(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }
    let mut h = mix(seed ^ P0, (key.len() as u64) ^ P1);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = mix(h ^ v, P1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // The last 8 bytes (overlapping the chunks) when there are 8, else the bytes one by one.
        let t = if key.len() >= 8 {
            u64::from_le_bytes(key[key.len() - 8..].try_into().expect("8 bytes"))
        } else {
            rest.iter().rev().fold(0, |t, &c| t << 8 | u64::from(c))
        };
        h = mix(h ^ t, P1);
    }
    mix(h, P0)
}

/// The index size for `n` groups: at most three quarters full.
pub fn slots_for(n: usize) -> usize {
    n + n / 3 + 1
}

#[inline]
fn home(h: u64, slots: usize) -> usize {
    ((u128::from(h) * slots as u128) >> 64) as usize
}

#[inline]
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

#[inline]
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// The key room for keys of these lengths: the one that makes records plus spilled keys smallest,
/// counting a spilled key a cache line more (it costs a second read per lookup).
fn key_room(lens: &[usize]) -> usize {
    let mut count = [0usize; MAX_ROOM + 2];
    let mut bytes = [0usize; MAX_ROOM + 2];
    for &l in lens {
        count[l.min(MAX_ROOM + 1)] += 1;
        bytes[l.min(MAX_ROOM + 1)] += l;
    }
    let cost = |room: usize| {
        let spilled: usize = (room + 1..=MAX_ROOM + 1)
            .map(|l| bytes[l] + 64 * count[l])
            .sum();
        lens.len() * (HEAD + room) + spilled
    };
    // The first of equal costs, from the largest room down: fewer keys spilled.
    (0..=(MAX_ROOM - MIN_ROOM) / 8)
        .rev()
        .map(|i| MIN_ROOM + 8 * i)
        .min_by_key(|&r| cost(r))
        .unwrap_or(MIN_ROOM)
}

/// A table's bytes: built in memory, or a model file mapped read-only.
pub enum Bytes {
    Owned(Vec<u8>),
    Mapped {
        ptr: std::ptr::NonNull<u8>,
        len: usize,
    },
}

impl Bytes {
    /// Maps `len` bytes of `f` read-only; [`Bytes::populate`] reads parts in up front.
    pub fn map(f: &File, len: usize) -> io::Result<Bytes> {
        use std::os::fd::AsRawFd;
        if len == 0 {
            return Ok(Bytes::Owned(Vec::new()));
        }
        // SAFETY: a fresh private read-only mapping of `len` bytes of an open regular file; it is
        // unmapped once, in `drop`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?;
        Ok(Bytes::Mapped { ptr, len })
    }
}

impl Bytes {
    /// Maps the pages of `range` in now (from the page cache, or read from disk), rather than one
    /// fault at a time as they are first touched. Only a hint: failures are ignored.
    pub fn populate(&self, range: Range<usize>) {
        let Bytes::Mapped { ptr, len } = *self else {
            return;
        };
        let page = 4096;
        let start = range.start.min(len) / page * page;
        let end = range.end.min(len);
        if start >= end {
            return;
        }
        // SAFETY: advice on pages of the live mapping; it does not change their contents.
        unsafe {
            let at = ptr.as_ptr().add(start).cast();
            if libc::madvise(at, end - start, libc::MADV_POPULATE_READ) != 0 {
                // Kernels before 5.14: start reading ahead at least.
                libc::madvise(at, end - start, libc::MADV_WILLNEED);
            }
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            // SAFETY: the mapping is live and `len` bytes long until `drop`. Model saves rename a new
            // file over the old one and never write a model file in place, so the bytes do not change.
            Bytes::Mapped { ptr, len } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
        }
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if let Bytes::Mapped { ptr, len } = *self {
            // SAFETY: the mapping made in `map`, unmapped only here.
            unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
        }
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Bytes::Owned(v) => write!(f, "Owned({} bytes)", v.len()),
            Bytes::Mapped { len, .. } => write!(f, "Mapped({len} bytes)"),
        }
    }
}

/// The shape of a stored table, as a file's section table gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub groups: u64,
    /// Bytes per record.
    pub stride: u64,
    pub slots: u64,
    pub max_probe: u64,
    pub seed: u64,
}

/// Groups' records and their index, over bytes owned or mapped.
pub struct GroupTable {
    bytes: Bytes,
    /// The records, then the spill area.
    records: Range<usize>,
    index: Range<usize>,
    len: usize,
    stride: usize,
    slots: usize,
    max_probe: usize,
    seed: u64,
}

impl std::fmt::Debug for GroupTable {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("GroupTable")
            .field("bytes", &self.bytes)
            .field("shape", &self.shape())
            .finish()
    }
}

impl GroupTable {
    /// Lays groups out as records (numbered in order) and indexes their keys; of equal keys the last
    /// one is found. Keys and group counts are bounded by the model files and chunks they come from
    /// (under 4 GiB), far inside the format's limits.
    pub fn build<'a>(groups: impl IntoIterator<Item = (&'a [u8], u8, f64, f64)>) -> GroupTable {
        GroupTable::build_with_seed(groups, SEED)
    }

    /// [`GroupTable::build`] with the index hashed under `seed`.
    pub fn build_with_seed<'a>(
        groups: impl IntoIterator<Item = (&'a [u8], u8, f64, f64)>,
        seed: u64,
    ) -> GroupTable {
        let groups: Vec<_> = groups.into_iter().collect();
        let n = groups.len();
        assert!(
            n < u32::MAX as usize,
            "too many groups for a u32 group number"
        );
        let room = key_room(&groups.iter().map(|g| g.0.len()).collect::<Vec<_>>());
        let stride = HEAD + room;
        let mut bytes = vec![0u8; n * stride];
        let mut spill = Vec::new();
        let mut hashes = Vec::with_capacity(n);
        for (g, &(key, kind, a, b)) in groups.iter().enumerate() {
            assert!(kind <= KIND_OTHER);
            let r = &mut bytes[g * stride..(g + 1) * stride];
            r[0..8].copy_from_slice(&a.to_bits().to_le_bytes());
            r[8..16].copy_from_slice(&b.to_bits().to_le_bytes());
            r[16..20].copy_from_slice(&u32::from(kind).to_le_bytes());
            let key_len = u32::try_from(key.len()).expect("keys are shorter than 4 GiB");
            r[20..24].copy_from_slice(&key_len.to_le_bytes());
            if key.len() <= room {
                r[HEAD..HEAD + key.len()].copy_from_slice(key);
            } else {
                r[HEAD..HEAD + 8].copy_from_slice(&(spill.len() as u64).to_le_bytes());
                spill.extend_from_slice(key);
            }
            hashes.push(hash(seed, key));
        }
        bytes.extend_from_slice(&spill);
        let records_len = bytes.len();
        let keys: Vec<&[u8]> = groups.iter().map(|g| g.0).collect();
        let (slots, max_probe) = build_index(&keys, &hashes);
        bytes.reserve(slots.len() * 8);
        for s in &slots {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        let len = bytes.len();
        GroupTable {
            bytes: Bytes::Owned(bytes),
            records: 0..records_len,
            index: records_len..len,
            len: n,
            stride,
            slots: slots.len(),
            max_probe,
            seed,
        }
    }

    /// Checks a stored table and takes it over: `records` and `index` are ranges of `bytes` with the
    /// given CRC-32s, `others` the number of groups of kind 2 the file holds. One sequential pass:
    /// each block is checksummed, then walked while it is in cache.
    pub fn open(
        bytes: Bytes,
        records: Range<usize>,
        index: Range<usize>,
        crcs: (u32, u32),
        shape: Shape,
        others: usize,
    ) -> Result<GroupTable, String> {
        let bad = |what: &str| Err(format!("payload does not decode: {what}"));
        let b: &[u8] = &bytes;
        let (Some(rec), Some(idx)) = (b.get(records.clone()), b.get(index.clone())) else {
            return bad("sections out of bounds");
        };
        let n = usize::try_from(shape.groups).unwrap_or(usize::MAX);
        let stride = usize::try_from(shape.stride).unwrap_or(usize::MAX);
        let slots = usize::try_from(shape.slots).unwrap_or(usize::MAX);
        let fits = n < u32::MAX as usize
            && stride % 8 == 0
            && (HEAD + MIN_ROOM..=HEAD + MAX_ROOM).contains(&stride)
            && n.checked_mul(stride).is_some_and(|l| l <= rec.len());
        if !fits
            || slots == 0
            || Some(idx.len()) != slots.checked_mul(8)
            || shape.max_probe >= shape.slots
        {
            return bad("group table sizes disagree");
        }
        let spill = &rec[n * stride..];
        // Records: known kinds, keys in bounds, other groups numbered in order. A damaged file
        // reports its checksum first.
        let mut problem = None;
        let mut crc = crc32fast::Hasher::new();
        let (mut g, mut other) = (0usize, 0u64);
        let mut done = 0;
        while done < rec.len() {
            let end = (done + BLOCK).min(rec.len());
            crc.update(&rec[done..end]);
            done = end;
            while problem.is_none() && g < n && (g + 1) * stride <= done {
                match check_record(&rec[g * stride..(g + 1) * stride], spill, &mut other) {
                    Ok(()) => g += 1,
                    Err(p) => problem = Some(p),
                }
            }
        }
        if crc.finalize() != crcs.0 {
            return Err(
                "payload checksum mismatch in the group records (the file is corrupted)".into(),
            );
        }
        if let Some(p) = problem {
            return bad(p);
        }
        if other != others as u64 {
            return bad("other groups do not match their count");
        }
        // Index: every used slot names a group.
        let mut crc = crc32fast::Hasher::new();
        let mut named = true;
        for block in idx.chunks(BLOCK) {
            crc.update(block);
            for s in block.chunks_exact(8) {
                let s = u64_at(s, 0);
                named &= s == 0 || ((s as u32).wrapping_sub(1) as usize) < n;
            }
        }
        if crc.finalize() != crcs.1 {
            return Err(
                "payload checksum mismatch in the group index (the file is corrupted)".into(),
            );
        }
        if !named {
            return bad("the group index names a group that does not exist");
        }
        Ok(GroupTable {
            bytes,
            records,
            index,
            len: n,
            stride,
            slots,
            max_probe: shape.max_probe as usize,
            seed: shape.seed,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn shape(&self) -> Shape {
        Shape {
            groups: self.len as u64,
            stride: self.stride as u64,
            slots: self.slots as u64,
            max_probe: self.max_probe as u64,
            seed: self.seed,
        }
    }

    /// The records and spill area, as stored.
    pub fn records(&self) -> &[u8] {
        &self.bytes[self.records.clone()]
    }

    /// The index, as stored.
    pub fn index(&self) -> &[u8] {
        &self.bytes[self.index.clone()]
    }

    /// The bytes a lookup may touch (above a few MiB they are not in cache).
    pub fn size(&self) -> usize {
        self.records.len() + self.index.len()
    }

    /// Every group's record and key, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Record, &[u8])> {
        (0..self.len).filter_map(|g| self.get(g))
    }

    /// Group `g`'s record and key.
    #[inline]
    pub fn get(&self, g: usize) -> Option<(Record, &[u8])> {
        let rec = self.records();
        let at = g.checked_mul(self.stride)?;
        let r = rec.get(at..at.checked_add(self.stride)?)?;
        let spill = rec.get(self.len * self.stride..)?;
        let (kind, key) = record_key(r, spill)?;
        let record = Record {
            group: g as u32,
            kind,
            a: f64::from_bits(u64_at(r, 0)),
            b: f64::from_bits(u64_at(r, 8)),
        };
        Some((record, key))
    }

    /// The hash a lookup of `key` starts from.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        hash(self.seed, key)
    }

    /// Starts fetching the index slots a lookup of a key hashing to `h` reads first.
    #[inline]
    pub fn prefetch_slot(&self, h: u64) {
        prefetch(self.index(), home(h, self.slots) * 8);
    }

    /// Starts fetching the record a lookup of a key hashing to `h` most likely compares (the first
    /// one its index slots name under the hash's tag). Best after [`GroupTable::prefetch_slot`] had
    /// time to bring the slots in.
    #[inline]
    pub fn prefetch_record(&self, h: u64) {
        let tag = u64::from(h as u32) << 32;
        let index = self.index();
        let mut i = home(h, self.slots);
        for _ in 0..=self.max_probe.min(8) {
            let s = u64_at(index, i * 8);
            if s == 0 {
                return;
            }
            if s & !0xffff_ffff == tag {
                let at = (s as u32).wrapping_sub(1) as usize * self.stride;
                prefetch(self.records(), at);
                prefetch(self.records(), at + self.stride - 1);
                return;
            }
            i += 1;
            if i == self.slots {
                i = 0;
            }
        }
    }

    /// The group whose key is `key`.
    #[inline]
    pub fn find(&self, key: &[u8]) -> Option<Record> {
        self.find_hashed(key, hash(self.seed, key))
    }

    /// [`GroupTable::find`] for a key whose [`GroupTable::hash`] is `h`.
    #[inline]
    pub fn find_hashed(&self, key: &[u8], h: u64) -> Option<Record> {
        let tag = u64::from(h as u32) << 32;
        let index = self.index();
        let mut i = home(h, self.slots);
        for _ in 0..=self.max_probe {
            let s = u64_at(index, i * 8);
            if s == 0 {
                return None;
            }
            if s & !0xffff_ffff == tag {
                if let Some((r, k)) = self.get((s as u32).wrapping_sub(1) as usize) {
                    if k == key {
                        return Some(r);
                    }
                }
            }
            i += 1;
            if i == self.slots {
                i = 0;
            }
        }
        None
    }
}

/// A record's kind and key (inline, or in `spill`); `None` when the key lies out of bounds.
#[inline]
fn record_key<'a>(r: &'a [u8], spill: &'a [u8]) -> Option<(u8, &'a [u8])> {
    let kind = u8::try_from(u32_at(r, 16)).ok()?;
    let key_len = u32_at(r, 20) as usize;
    let key = if key_len <= r.len() - HEAD {
        &r[HEAD..HEAD + key_len]
    } else {
        let at = usize::try_from(u64_at(r, HEAD)).ok()?;
        spill.get(at..at.checked_add(key_len)?)?
    };
    Some((kind, key))
}

/// Checks one record against the spill area, counting other groups, which must come in order.
fn check_record(r: &[u8], spill: &[u8], other: &mut u64) -> Result<(), &'static str> {
    let (kind, _) = record_key(r, spill).ok_or("a group key runs past its section")?;
    match kind {
        KIND_NORMAL | KIND_EXPONENTIAL => Ok(()),
        KIND_OTHER if u64_at(r, 0) == *other && u64_at(r, 8) == 0 => {
            *other += 1;
            Ok(())
        }
        _ => Err("a group record of an unknown kind"),
    }
}

/// Builds the index of groups with these keys and their hashes. Returns the slots and the longest
/// probe.
fn build_index(keys: &[&[u8]], hashes: &[u64]) -> (Vec<u64>, usize) {
    let n = keys.len();
    let cap = slots_for(n);
    let mut slots = vec![0u64; cap];
    let mut max_probe = 0;
    // Inserts in batches whose home slots are prefetched, so the random accesses overlap.
    const BATCH: usize = 16;
    for start in (0..n).step_by(BATCH) {
        let end = (start + BATCH).min(n);
        for &h in &hashes[start..end] {
            prefetch(&slots, home(h, cap));
        }
        for g in start..end {
            let h = hashes[g];
            let tag = u64::from(h as u32) << 32;
            let mut i = home(h, cap);
            let mut probe = 0;
            loop {
                let s = slots[i];
                if s == 0 || (s & !0xffff_ffff == tag && keys[s as u32 as usize - 1] == keys[g]) {
                    slots[i] = tag | (g as u64 + 1);
                    max_probe = max_probe.max(probe);
                    break;
                }
                probe += 1;
                i += 1;
                if i == cap {
                    i = 0;
                }
            }
        }
    }
    (slots, max_probe)
}

/// Starts fetching the cache line of `v[i]`, if there is one.
#[inline]
fn prefetch<T>(v: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if i < v.len() {
        // SAFETY: `i` is within `v`; a prefetch has no other effect.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(v.as_ptr().add(i).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, i);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups of all kinds, some keys long enough to spill.
    fn sample(n: usize) -> Vec<(Vec<u8>, u8, f64, f64)> {
        let mut other = 0;
        (0..n)
            .map(|i| {
                let pad = if i % 50 == 7 { 150 } else { i % 13 };
                let key = format!("host-{i}-{}", "x".repeat(pad)).into_bytes();
                let kind = (i % 3) as u8;
                if kind == KIND_OTHER {
                    other += 1;
                    (key, kind, f64::from_bits(other - 1), 0.0)
                } else {
                    (key, kind, i as f64, 0.5)
                }
            })
            .collect()
    }

    fn built(groups: &[(Vec<u8>, u8, f64, f64)]) -> GroupTable {
        GroupTable::build(groups.iter().map(|(k, t, a, b)| (&k[..], *t, *a, *b)))
    }

    fn others(groups: &[(Vec<u8>, u8, f64, f64)]) -> usize {
        groups.iter().filter(|g| g.1 == KIND_OTHER).count()
    }

    /// A table's bytes as a file stores them, with the record and index ranges.
    fn stored(t: &GroupTable) -> (Vec<u8>, Range<usize>, Range<usize>) {
        let mut bytes = t.records().to_vec();
        bytes.extend_from_slice(t.index());
        let r = 0..t.records().len();
        (bytes, r.clone(), r.end..r.end + t.index().len())
    }

    fn open(
        bytes: Vec<u8>,
        r: &Range<usize>,
        i: &Range<usize>,
        shape: Shape,
        others: usize,
    ) -> Result<GroupTable, String> {
        let crcs = (
            crc32fast::hash(&bytes[r.clone()]),
            crc32fast::hash(&bytes[i.clone()]),
        );
        GroupTable::open(
            Bytes::Owned(bytes),
            r.clone(),
            i.clone(),
            crcs,
            shape,
            others,
        )
    }

    #[test]
    fn every_key_is_found_and_no_other() {
        for n in [0, 1, 2, 7, 1000, 20_000] {
            let groups = sample(n);
            let t = built(&groups);
            assert_eq!(t.len(), n);
            for (g, (k, kind, a, _)) in groups.iter().enumerate() {
                let r = t
                    .find(k)
                    .unwrap_or_else(|| panic!("{n}: group {g} not found"));
                assert_eq!((r.group as usize, r.kind), (g, *kind));
                assert_eq!(r.a.to_bits(), a.to_bits());
                assert_eq!(t.get(g), Some((r, &k[..])));
            }
            assert!(t.find(b"nope").is_none());
            assert!(t.find(b"").is_none());
            assert!(t.get(n).is_none());
            let (bytes, r, i) = stored(&t);
            let opened =
                open(bytes, &r, &i, t.shape(), others(&groups)).expect("a built table opens");
            for (k, ..) in &groups {
                assert_eq!(opened.find(k), t.find(k));
            }
            assert!(opened.iter().eq(t.iter()));
        }
    }

    #[test]
    fn records_are_sized_for_their_keys() {
        let keys = |lens: &[usize]| lens.iter().map(|&l| vec![b'k'; l]).collect::<Vec<_>>();
        let stride = |keys: &[Vec<u8>]| {
            GroupTable::build(keys.iter().map(|k| (&k[..], KIND_NORMAL, 0.0, 1.0)))
                .shape()
                .stride
        };
        assert_eq!(stride(&keys(&[30; 100])), 56);
        assert_eq!(stride(&keys(&[32; 100])), 56);
        assert_eq!(stride(&keys(&[33; 100])), 64);
        assert_eq!(stride(&keys(&[0; 10])), 32);
        // One long key among short ones spills rather than widening every record.
        let mut mixed = keys(&[20; 100]);
        mixed.push(vec![b'x'; 1000]);
        assert_eq!(stride(&mixed), 48);
        let t = GroupTable::build(mixed.iter().map(|k| (&k[..], KIND_NORMAL, 0.0, 1.0)));
        assert_eq!(t.find(&mixed[100]).map(|r| r.group), Some(100));
    }

    #[test]
    fn equal_keys_find_the_last() {
        let t = GroupTable::build([
            (&b"a"[..], 0, 1.0, 1.0),
            (b"b", 0, 2.0, 1.0),
            (b"a", 0, 3.0, 1.0),
        ]);
        assert_eq!(t.find(b"a").unwrap().group, 2);
        assert_eq!(t.find(b"b").unwrap().group, 1);
    }

    #[test]
    fn the_hash_is_stable() {
        // Stored indexes depend on these values.
        assert_ne!(hash(SEED, b"a"), hash(SEED, b"a\0"));
        assert_ne!(hash(SEED, b"a"), hash(SEED ^ 1, b"a"));
        let got: Vec<u64> = [&b""[..], b"a", b"01234567", b"0123456789abcdef0"]
            .iter()
            .map(|k| hash(SEED, k))
            .collect();
        assert_eq!(got, STABLE_HASHES);
    }

    const STABLE_HASHES: [u64; 4] = [
        214438790447632216,
        10727127924164683380,
        7775504946220299222,
        7718957094382696527,
    ];

    #[test]
    fn damaged_tables_are_refused_or_harmless() {
        let groups = sample(300);
        let t = built(&groups);
        let (bytes, r, i) = stored(&t);
        let n_others = others(&groups);
        assert!(open(bytes.clone(), &r, &i, t.shape(), n_others).is_ok());
        // Any byte of the records or the index changed, with checksums that match: refused, or
        // lookups of every key still end without a panic.
        for pos in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[pos] ^= flip;
                if let Ok(t2) = open(b, &r, &i, t.shape(), n_others) {
                    for (k, ..) in &groups {
                        let _ = t2.find(k);
                    }
                    assert_eq!(t2.iter().count(), groups.len());
                }
            }
        }
        // Shapes that lie.
        let sh = t.shape();
        for shape in [
            Shape { slots: 0, ..sh },
            Shape {
                slots: sh.slots + 1,
                ..sh
            },
            Shape {
                slots: u64::MAX,
                ..sh
            },
            Shape {
                groups: sh.groups + 1,
                ..sh
            },
            Shape {
                groups: u64::MAX,
                ..sh
            },
            Shape {
                stride: sh.stride + 8,
                ..sh
            },
            Shape {
                stride: sh.stride - 8,
                ..sh
            },
            Shape {
                stride: sh.stride + 1,
                ..sh
            },
            Shape { stride: 0, ..sh },
            Shape {
                stride: u64::MAX,
                ..sh
            },
            Shape {
                max_probe: sh.slots,
                ..sh
            },
            Shape {
                max_probe: u64::MAX,
                ..sh
            },
        ] {
            assert!(
                open(bytes.clone(), &r, &i, shape, n_others).is_err(),
                "{shape:?}"
            );
        }
        assert!(open(bytes.clone(), &r, &i, sh, n_others + 1).is_err());
        // Fewer groups than records: the rest reads as spill area, still in bounds.
        if let Ok(t2) = open(
            bytes.clone(),
            &r,
            &i,
            Shape {
                groups: sh.groups - 1,
                ..sh
            },
            n_others,
        ) {
            for (k, ..) in &groups {
                let _ = t2.find(k);
            }
        }
        // A wrong checksum.
        let crcs = (
            crc32fast::hash(&bytes[r.clone()]) ^ 1,
            crc32fast::hash(&bytes[i.clone()]),
        );
        let e = GroupTable::open(
            Bytes::Owned(bytes.clone()),
            r.clone(),
            i.clone(),
            crcs,
            sh,
            n_others,
        )
        .unwrap_err();
        assert!(e.contains("checksum mismatch"), "{e}");
        // A slot naming a group past the last is refused.
        let mut past = bytes.clone();
        let empty = past[i.clone()]
            .chunks_exact(8)
            .position(|s| s == [0; 8])
            .unwrap();
        let at = i.start + empty * 8;
        past[at..at + 8].copy_from_slice(&(sh.groups + 1).to_le_bytes());
        let e = open(past, &r, &i, sh, n_others).unwrap_err();
        assert!(e.contains("index"), "{e}");
        // An index with no empty slot: probing for a missing key still ends (max_probe bounds it).
        let mut full = bytes.clone();
        let used = full[i.clone()]
            .chunks_exact(8)
            .find(|s| *s != [0; 8])
            .unwrap()
            .to_vec();
        for s in full[i.clone()].chunks_exact_mut(8) {
            if s == [0; 8] {
                s.copy_from_slice(&used);
            }
        }
        let t2 = open(
            full,
            &r,
            &i,
            Shape {
                max_probe: sh.slots - 1,
                ..sh
            },
            n_others,
        )
        .unwrap();
        assert!(t2.find(b"missing").is_none());
        for (k, ..) in &groups {
            assert!(t2.find(k).is_some());
        }
    }
}
