//! Reading one logical stream's packets out of Ogg pages (RFC 3533), with every size bounded:
//! a page is at most 64 KiB by its format, every page's checksum is verified, pages of other
//! streams are skipped without keeping anything, and a packet spanning any number of pages
//! keeps at most the bytes its caller asks for (the rest is counted, not stored).
//!
//! Never here: an allocation sized by the input beyond one page, or a panic on damaged bytes.

use std::io::{self, Read};

use super::page::{CAPTURE, FLAG_BOS, FLAG_EOS, PAGE_HEADER, crc_update};

const FLAG_CONTINUED: u8 = 0x01;
/// How far past damage the reader looks for the next page before giving up, as other Ogg
/// readers do (a player skips a little junk between pages).
const MAX_RESYNC: usize = 64 * 1024;

/// What went wrong reading pages.
#[derive(Debug)]
pub(super) enum DemuxError {
    /// Reading failed, or the input ended inside a page (`UnexpectedEof`).
    Io(io::Error),
    /// A page's checksum does not match its bytes.
    Checksum,
    /// The pages do not fit together (what, for the message).
    Structure(&'static str),
    /// A packet grew past the most its caller takes (its length so far).
    PacketTooLarge(usize),
}

impl From<io::Error> for DemuxError {
    fn from(e: io::Error) -> Self {
        DemuxError::Io(e)
    }
}

/// One packet of the followed stream.
#[derive(Debug)]
pub(super) struct Packet {
    /// Its first bytes, up to what the caller asked to keep.
    pub(super) data: Vec<u8>,
    /// Its whole length.
    pub(super) len: usize,
    /// Granule position of the page it ends on.
    pub(super) granule: u64,
    /// The last packet ending on its page.
    pub(super) last_in_page: bool,
    /// The last packet of the stream (the last on its end-of-stream page).
    pub(super) last_in_stream: bool,
}

/// The first page of a logical stream.
pub(super) enum StreamStart {
    /// The input ended.
    End,
    /// The page read is not a beginning-of-stream page: the streams' first pages are over.
    NotFirstPage,
    /// A beginning-of-stream page: its stream's serial and first packet (`complete` false
    /// when that packet goes on past the page).
    First {
        serial: u32,
        packet: Packet,
        complete: bool,
    },
}

/// See the module doc.
pub(super) struct OggDemuxer<R> {
    reader: R,
    header: [u8; PAGE_HEADER],
    lacing: Vec<u8>,
    body: Vec<u8>,
    /// The next segment of the loaded page, and where its bytes start in `body`.
    segment: usize,
    offset: usize,
    loaded: bool,
    serial: u32,
}

impl<R: Read> OggDemuxer<R> {
    pub(super) fn new(reader: R) -> Self {
        Self {
            reader,
            header: [0; PAGE_HEADER],
            lacing: Vec::with_capacity(255),
            body: Vec::with_capacity(255 * 255),
            segment: 0,
            offset: 0,
            loaded: false,
            serial: 0,
        }
    }

    pub(super) fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    fn flags(&self) -> u8 {
        self.header[5]
    }

    fn page_serial(&self) -> u32 {
        let h = &self.header;
        u32::from_le_bytes([h[14], h[15], h[16], h[17]])
    }

    fn page_granule(&self) -> u64 {
        let h = &self.header;
        u64::from_le_bytes([h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13]])
    }

    /// Reads the next whole page and checks it; `false` at the end of the input.
    fn next_page(&mut self) -> Result<bool, DemuxError> {
        self.loaded = false;
        if !self.find_capture()? {
            return Ok(false);
        }
        self.reader.read_exact(&mut self.header[4..])?;
        if self.header[4] != 0 {
            return Err(DemuxError::Structure("a page has an unknown Ogg version"));
        }
        self.lacing.resize(usize::from(self.header[26]), 0);
        self.reader.read_exact(&mut self.lacing)?;
        let body: usize = self.lacing.iter().map(|&l| usize::from(l)).sum();
        self.body.resize(body, 0);
        self.reader.read_exact(&mut self.body)?;
        let mut crc = crc_update(0, &self.header[..22]);
        crc = crc_update(crc, &[0; 4]);
        crc = crc_update(crc, &self.header[26..]);
        crc = crc_update(crc, &self.lacing);
        crc = crc_update(crc, &self.body);
        let h = &self.header;
        if crc != u32::from_le_bytes([h[22], h[23], h[24], h[25]]) {
            return Err(DemuxError::Checksum);
        }
        self.segment = 0;
        self.offset = 0;
        self.loaded = true;
        Ok(true)
    }

    /// Reads up to and including the next "OggS" into the header; `false` if the input ends
    /// first (junk after the last page is tolerated, as players do).
    fn find_capture(&mut self) -> Result<bool, DemuxError> {
        let mut window = [0u8; 4];
        let mut got = 0;
        let mut skipped = 0usize;
        let mut byte = [0u8; 1];
        loop {
            if got == 4 {
                if &window == CAPTURE {
                    self.header[..4].copy_from_slice(CAPTURE);
                    return Ok(true);
                }
                window.copy_within(1.., 0);
                got = 3;
                skipped += 1;
                if skipped > MAX_RESYNC {
                    return Err(DemuxError::Structure("no Ogg page where one should be"));
                }
            }
            match self.reader.read(&mut byte) {
                Ok(0) => return Ok(false),
                Ok(_) => {
                    window[got] = byte[0];
                    got += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads the next page as the first page of a stream.
    pub(super) fn stream_start(&mut self) -> Result<StreamStart, DemuxError> {
        if !self.next_page()? {
            return Ok(StreamStart::End);
        }
        if self.flags() & FLAG_BOS == 0 {
            return Ok(StreamStart::NotFirstPage);
        }
        let serial = self.page_serial();
        let mut packet = self.empty_packet();
        let complete = self.take_segments(&mut packet, usize::MAX);
        Ok(StreamStart::First {
            serial,
            packet,
            complete,
        })
    }

    /// From now on, [`next_packet`](Self::next_packet) reads stream `serial`, going on from
    /// the page just read.
    pub(super) fn follow(&mut self, serial: u32) {
        self.serial = serial;
    }

    fn empty_packet(&self) -> Packet {
        Packet {
            data: Vec::new(),
            len: 0,
            granule: 0,
            last_in_page: false,
            last_in_stream: false,
        }
    }

    /// Adds the loaded page's segments to `packet` until one ends it; true when it ended.
    fn take_segments(&mut self, packet: &mut Packet, keep: usize) -> bool {
        while let Some(&size) = self.lacing.get(self.segment) {
            let size = usize::from(size);
            let bytes = &self.body[self.offset..self.offset + size];
            let room = keep.saturating_sub(packet.data.len()).min(size);
            packet.data.extend_from_slice(&bytes[..room]);
            packet.len += size;
            self.segment += 1;
            self.offset += size;
            if size < 255 {
                packet.granule = self.page_granule();
                packet.last_in_page = self.segment == self.lacing.len();
                packet.last_in_stream = packet.last_in_page && self.flags() & FLAG_EOS != 0;
                return true;
            }
        }
        false
    }

    /// The next packet of the followed stream, keeping at most `keep` of its bytes and reading
    /// no further once it is longer than `max`; `None` when the input ends (a packet begun and
    /// not finished by then is lost).
    pub(super) fn next_packet(
        &mut self,
        keep: usize,
        max: usize,
    ) -> Result<Option<Packet>, DemuxError> {
        let mut packet = self.empty_packet();
        let mut continuing = false;
        loop {
            if !self.loaded || self.segment == self.lacing.len() {
                if !self.next_page()? {
                    return Ok(None);
                }
                if self.page_serial() != self.serial {
                    self.loaded = false;
                    continue;
                }
                if self.flags() & FLAG_BOS != 0 {
                    return Err(DemuxError::Structure("the stream begins a second time"));
                }
                if (self.flags() & FLAG_CONTINUED != 0) != continuing {
                    return Err(DemuxError::Structure(if continuing {
                        "a packet breaks off between pages"
                    } else {
                        "a page continues a packet that never began"
                    }));
                }
            }
            if self.take_segments(&mut packet, keep) {
                return Ok(Some(packet));
            }
            if packet.len > max {
                return Err(DemuxError::PacketTooLarge(packet.len));
            }
            continuing = true;
        }
    }
}
