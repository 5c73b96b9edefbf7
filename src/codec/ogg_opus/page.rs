//! Ogg pages (RFC 3533): the CRC, laying one logical stream's packets into pages, and reading
//! a page's header fields back (to find a stream's last granule position).
//!
//! Never here: anything Opus. Damaged bytes are "no page here", never a panic.

use std::io::{self, Read, Seek, SeekFrom, Write};

pub(super) const CAPTURE: &[u8; 4] = b"OggS";
pub(super) const PAGE_HEADER: usize = 27;
const MAX_SEGMENTS: usize = 255;
/// The largest Ogg page: header, a full lacing table and 255 full segments.
const MAX_PAGE: usize = PAGE_HEADER + MAX_SEGMENTS + MAX_SEGMENTS * 255;
/// Granule position -1: no packet ends on the page.
pub(super) const NO_GRANULE: u64 = u64::MAX;
const FLAG_CONTINUED: u8 = 0x01;
pub(super) const FLAG_BOS: u8 = 0x02;
pub(super) const FLAG_EOS: u8 = 0x04;

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04c1_1db7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

/// Ogg's CRC-32: polynomial 0x04c11db7, not reflected, no initial or final xor.
pub(super) fn crc_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ b)];
    }
    crc
}

/// The header fields of one whole, checksum-verified page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PageView {
    pub(super) len: usize,
    pub(super) flags: u8,
    pub(super) granule: u64,
    pub(super) serial: u32,
    pub(super) sequence: u32,
}

/// Parses the page at the start of `bytes` if it is whole there and its checksum holds.
pub(super) fn parse_page(bytes: &[u8]) -> Option<PageView> {
    if bytes.len() < PAGE_HEADER || !bytes.starts_with(CAPTURE) || bytes[4] != 0 {
        return None;
    }
    let segments = usize::from(bytes[26]);
    let lacing = bytes.get(PAGE_HEADER..PAGE_HEADER + segments)?;
    let body: usize = lacing.iter().map(|&l| usize::from(l)).sum();
    let page = bytes.get(..PAGE_HEADER + segments + body)?;
    let mut crc = crc_update(0, &page[..22]);
    crc = crc_update(crc, &[0; 4]);
    crc = crc_update(crc, &page[26..]);
    let le32 = |at: usize| u32::from_le_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]]);
    if crc != le32(22) {
        return None;
    }
    let granule = u64::from(le32(6)) | (u64::from(le32(10)) << 32);
    Some(PageView {
        len: page.len(),
        flags: page[5],
        granule,
        serial: le32(14),
        sequence: le32(18),
    })
}

/// Lays the packets of one logical stream into Ogg pages. The caller decides where pages end;
/// a packet too big for the rest of a page continues on the next.
pub(super) struct PageWriter {
    pub(super) serial: u32,
    sequence: u32,
    first: bool,
    /// The page being filled starts with the rest of a packet begun on the previous one.
    continued: bool,
    lacing: Vec<u8>,
    body: Vec<u8>,
    /// Granule position of the last packet ending on this page, or `NO_GRANULE`.
    granule: u64,
    /// Header, lacing and body assembled so a page goes out in one write.
    page: Vec<u8>,
}

impl PageWriter {
    pub(super) fn new(serial: u32) -> Self {
        Self {
            serial,
            sequence: 0,
            first: true,
            continued: false,
            lacing: Vec::with_capacity(MAX_SEGMENTS),
            body: Vec::with_capacity(MAX_SEGMENTS * 255),
            granule: NO_GRANULE,
            page: Vec::with_capacity(MAX_PAGE),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lacing.is_empty()
    }

    /// Adds a packet ending at `granule`; writes out any page it fills.
    pub(super) fn push(
        &mut self,
        w: &mut impl Write,
        packet: &[u8],
        granule: u64,
    ) -> io::Result<()> {
        let mut rest = packet;
        loop {
            let free = MAX_SEGMENTS - self.lacing.len();
            // A packet of n bytes takes n / 255 full segments and one shorter (maybe empty) one.
            if rest.len() < 255 * free {
                self.lacing
                    .extend(std::iter::repeat_n(255, rest.len() / 255));
                self.lacing.push((rest.len() % 255) as u8);
                self.body.extend_from_slice(rest);
                self.granule = granule;
                return Ok(());
            }
            let (now, later) = rest.split_at(255 * free);
            self.lacing.extend(std::iter::repeat_n(255, free));
            self.body.extend_from_slice(now);
            rest = later;
            self.write_page(w, false)?;
        }
    }

    pub(super) fn write_page(&mut self, w: &mut impl Write, eos: bool) -> io::Result<()> {
        let mut flags = 0;
        if self.continued {
            flags |= FLAG_CONTINUED;
        }
        if self.first {
            flags |= FLAG_BOS;
        }
        if eos {
            flags |= FLAG_EOS;
        }
        self.page.clear();
        self.page.extend_from_slice(CAPTURE);
        self.page.push(0);
        self.page.push(flags);
        self.page.extend_from_slice(&self.granule.to_le_bytes());
        self.page.extend_from_slice(&self.serial.to_le_bytes());
        self.page.extend_from_slice(&self.sequence.to_le_bytes());
        self.page.extend_from_slice(&[0; 4]);
        // At most 255 by construction.
        self.page.push(self.lacing.len() as u8);
        self.page.extend_from_slice(&self.lacing);
        self.page.extend_from_slice(&self.body);
        let crc = crc_update(0, &self.page);
        self.page[22..26].copy_from_slice(&crc.to_le_bytes());
        w.write_all(&self.page)?;

        self.first = false;
        self.sequence = self.sequence.wrapping_add(1);
        // A last segment of 255 bytes means the packet goes on (RFC 3533 lacing).
        self.continued = self.lacing.last() == Some(&255);
        self.lacing.clear();
        self.body.clear();
        self.granule = NO_GRANULE;
        Ok(())
    }
}

/// Bytes searched backwards from the end for the stream's last page: a stream's last page is
/// at the end of an honest file, or a few pages before it when other streams end after it.
const SCAN_BUDGET: u64 = 16 << 20;
/// Bytes of candidate pages checksummed in one scan: 64 full pages. Only a candidate whose
/// header already names the stream and a granule position is checksummed, so an honest file
/// checks one or two; a file crafted full of such headers is given up on, not read for minutes.
const VERIFY_BUDGET: usize = 64 * MAX_PAGE;

/// The granule position of stream `serial`'s last page, scanning backwards from the end of `r`
/// down to `floor` within [`SCAN_BUDGET`] and [`VERIFY_BUDGET`]; `None` when no page gives it
/// there. Leaves `r` anywhere.
pub(super) fn last_granule<R: Read + Seek>(
    r: &mut R,
    serial: u32,
    floor: u64,
) -> io::Result<Option<u64>> {
    let (granule, _) = last_granule_within(r, serial, floor, VERIFY_BUDGET)?;
    Ok(granule)
}

/// [`last_granule`] with its checksum budget given, also saying how many bytes it checksummed.
pub(super) fn last_granule_within<R: Read + Seek>(
    r: &mut R,
    serial: u32,
    floor: u64,
    verify_budget: usize,
) -> io::Result<(Option<u64>, usize)> {
    const CHUNK: u64 = 64 * 1024;
    let end = r.seek(SeekFrom::End(0))?;
    let floor = floor.max(end.saturating_sub(SCAN_BUDGET));
    let mut verified = 0usize;
    let mut buf = Vec::new();
    let mut hi = end;
    while hi > floor {
        // Pages starting in [lo, hi) are checked; bytes past hi let the one nearest it be whole.
        let lo = hi.saturating_sub(CHUNK).max(floor);
        let to = hi.saturating_add(MAX_PAGE as u64).min(end);
        buf.resize(usize::try_from(to - lo).unwrap_or(0), 0);
        r.seek(SeekFrom::Start(lo))?;
        r.read_exact(&mut buf)?;
        let starts = usize::try_from(hi - lo).unwrap_or(0);
        for i in (0..starts).rev() {
            let Some(len) = candidate_len(&buf[i..], serial) else {
                continue;
            };
            if verified + len > verify_budget {
                return Ok((None, verified));
            }
            verified += len;
            if let Some(page) = parse_page(&buf[i..]) {
                return Ok((Some(page.granule), verified));
            }
        }
        hi = lo;
    }
    Ok((None, verified))
}

/// The length of the page that may start at `bytes[0]`, judged by its header alone: it must
/// be stream `serial`'s, end a packet (a granule position) and lie whole in `bytes`.
fn candidate_len(bytes: &[u8], serial: u32) -> Option<usize> {
    if bytes.len() < PAGE_HEADER || !bytes.starts_with(CAPTURE) || bytes[4] != 0 {
        return None;
    }
    let le32 =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if le32(14) != serial || (le32(6) == u32::MAX && le32(10) == u32::MAX) {
        return None;
    }
    let segments = usize::from(bytes[26]);
    let lacing = bytes.get(PAGE_HEADER..PAGE_HEADER + segments)?;
    let len = PAGE_HEADER + segments + lacing.iter().map(|&l| usize::from(l)).sum::<usize>();
    (len <= bytes.len()).then_some(len)
}
