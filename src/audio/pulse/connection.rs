//! A stream's connection as the pump serves it: reading what the server sent and taking whole
//! messages from it, and writing what a playback stream's server asked for.
//!
//! Never waits: a socket that has nothing (or takes nothing more) leaves the rest for the next
//! round. Bad bytes from the server end the stream with an error, never a panic.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use cpal::{Data, Error, ErrorKind, OutputCallbackInfo, OutputStreamTimestamp, SampleFormat};
use pulseaudio::protocol;

use super::client::{lost_connection, protocol_error};
use super::format::Samples;
use super::instant;
use super::pump::PlayCallback;
use super::server_changes;
use super::stream::CORK;

/// A stream's connection and what the pump knows of it.
pub(super) struct Connection {
    pub(super) socket: UnixStream,
    /// Bytes read and not yet handled: whole messages are taken from the front.
    pub(super) inbox: Vec<u8>,
    pub(super) version: u16,
    pub(super) channel: u32,
    pub(super) stream_index: u32,
    /// A playback stream (else a record stream).
    pub(super) output: bool,
    pub(super) channels: usize,
    pub(super) frame_bytes: usize,
    /// How often the pump should wake to hand over what has come: the period asked for.
    pub(super) period: Duration,
    pub(super) start: Instant,
    pub(super) latency: Duration,
    /// Playing: the bytes the server asked for and has not been sent yet.
    pub(super) requested: usize,
    /// The sequence number of the next command the pump sends.
    pub(super) seq: u32,
}

/// What reading found.
pub(super) enum Drained {
    /// Everything the socket had was read (possibly nothing).
    Empty,
    /// The connection closed or failed.
    Closed(Error),
}

impl Connection {
    /// Reads everything the socket holds now into the inbox.
    pub(super) fn drain(&mut self, read_buf: &mut [u8]) -> Drained {
        loop {
            match self.socket.read(read_buf) {
                Ok(0) => {
                    return Drained::Closed(lost_connection(&"the server closed it"));
                }
                Ok(n) => {
                    self.inbox.extend_from_slice(&read_buf[..n]);
                    // A stream socket's read takes everything queued up to the buffer's size:
                    // a short one emptied it, and asking again would only hear "would block".
                    if n < read_buf.len() {
                        return Drained::Empty;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Drained::Empty,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Drained::Closed(lost_connection(&e)),
            }
        }
    }

    /// Takes the whole messages from the front of the inbox: samples of this stream are
    /// appended to `samples` (recording; a playback stream is sent none), requests for more
    /// are added up (playing); `Some` when a message ends the stream.
    pub(super) fn take_messages(&mut self, mut samples: Option<&mut Samples>) -> Option<Error> {
        let mut at = 0;
        let mut ended = None;
        while self.inbox.len() - at >= protocol::DESCRIPTOR_SIZE {
            let desc = match protocol::read_descriptor(&mut &self.inbox[at..]) {
                Ok(desc) => desc,
                Err(e) => {
                    ended = Some(lost_connection(&e));
                    break;
                }
            };
            if desc.length as usize > protocol::MAX_MEMBLOCKQ_LENGTH {
                ended = Some(lost_connection(&format!(
                    "a message of {} bytes, more than the protocol allows",
                    desc.length
                )));
                break;
            }
            let body = at + protocol::DESCRIPTOR_SIZE;
            let end = body + desc.length as usize;
            if self.inbox.len() < end {
                break;
            }
            if desc.channel == u32::MAX {
                match self.command(&self.inbox[body..end]) {
                    ServerNotice::Nothing => {}
                    ServerNotice::Requested(bytes) => {
                        self.requested = self.requested.saturating_add(bytes as usize);
                    }
                    ServerNotice::Ended(why) => {
                        ended = Some(why);
                        at = end;
                        break;
                    }
                }
            } else if desc.channel == self.channel
                && let Some(samples) = samples.as_deref_mut()
            {
                // PulseAudio sends whole frames; whole samples are all this relies on.
                samples.extend_from_bytes(&self.inbox[body..end]);
            }
            at = end;
        }
        self.inbox.drain(..at);
        ended
    }

    /// What the server's command `message` means for this stream.
    fn command(&self, message: &[u8]) -> ServerNotice {
        let mut cursor = std::io::Cursor::new(message);
        let Ok((_, command)) = protocol::Command::read_tag_prefixed(&mut cursor, self.version)
        else {
            // A message this client does not know: not about the data, so not fatal.
            return ServerNotice::Nothing;
        };
        let ended = |why: &'static str| {
            ServerNotice::Ended(Error::with_message(ErrorKind::DeviceNotAvailable, why))
        };
        match command {
            protocol::Command::RecordStreamKilled(channel)
                if !self.output && channel == self.channel =>
            {
                ended("PulseAudio ended the recording: its source was removed")
            }
            protocol::Command::RecordStreamMoved(params)
                if !self.output && params.stream_index == self.stream_index =>
            {
                ended("PulseAudio moved the recording to another source")
            }
            protocol::Command::PlaybackStreamKilled(channel)
                if self.output && channel == self.channel =>
            {
                ended("PulseAudio ended the playback: its output was removed")
            }
            protocol::Command::PlaybackStreamMoved(params)
                if self.output && params.stream_index == self.stream_index =>
            {
                ended("PulseAudio moved the playback to another output")
            }
            protocol::Command::Request(request)
                if self.output && request.channel == self.channel =>
            {
                ServerNotice::Requested(request.length)
            }
            protocol::Command::SubscribeEvent(event)
                if event.event_facility == protocol::SubscriptionEventFacility::Server =>
            {
                server_changes::heard();
                ServerNotice::Nothing
            }
            _ => ServerNotice::Nothing,
        }
    }

    /// Playing: sends what is still pending; once nothing is, the pause or start the owner
    /// asked for (`cork`), then as many whole frames as the server asked for, filled by the
    /// callback in one call. Never waits: what the socket does not take now goes next time.
    pub(super) fn play(
        &mut self,
        cork: &AtomicU8,
        samples: &mut Samples,
        data: &mut PlayCallback,
        outbox: &mut Vec<u8>,
        sent: &mut usize,
    ) -> Result<(), Error> {
        self.send(outbox, sent)?;
        if *sent < outbox.len() {
            return Ok(());
        }
        let asked = cork.swap(0, Ordering::Relaxed);
        if asked != 0 {
            outbox.clear();
            *sent = 0;
            let command =
                protocol::Command::CorkPlaybackStream(protocol::stream::CorkStreamParams {
                    channel: self.channel,
                    cork: asked == CORK,
                });
            protocol::write_command_message(&mut *outbox, self.seq, &command, self.version)
                .map_err(|e| protocol_error("starting or pausing the playback", &e))?;
            self.seq = self.seq.wrapping_add(1);
            self.send(outbox, sent)?;
            if *sent < outbox.len() {
                return Ok(());
            }
        }
        // A message is at most what the protocol allows (the server never asks for more).
        let frames = self.requested.min(protocol::MAX_MEMBLOCKQ_LENGTH) / self.frame_bytes;
        if frames == 0 {
            return Ok(());
        }
        let n = frames * self.channels;
        samples.ensure(n);
        let now = self.start.elapsed();
        let info = OutputCallbackInfo::new(OutputStreamTimestamp {
            callback: instant(now),
            playback: instant(now + self.latency),
        });
        // SAFETY: cpal's only way to make `Data`; `n` initialised samples of the format named
        // start at the pointer (a `Vec` of that very type, at least `n` long, so aligned and
        // large enough), and `samples` is neither moved nor touched until the callback (which
        // writes only through `Data`, within its length) returns.
        #[allow(unsafe_code)]
        let mut view = unsafe {
            match samples {
                Samples::I16(v) => Data::from_parts(v.as_mut_ptr().cast(), n, SampleFormat::I16),
                Samples::F32(v) => Data::from_parts(v.as_mut_ptr().cast(), n, SampleFormat::F32),
            }
        };
        data(&mut view, &info);
        outbox.clear();
        *sent = 0;
        let bytes = frames * self.frame_bytes;
        let mut head = [0u8; protocol::DESCRIPTOR_SIZE];
        protocol::encode_descriptor(
            &mut head,
            &protocol::Descriptor {
                length: u32::try_from(bytes).unwrap_or(u32::MAX),
                channel: self.channel,
                offset: 0,
                flags: protocol::DescriptorFlags::empty(),
            },
        );
        outbox.extend_from_slice(&head);
        samples.append_bytes(n, outbox);
        self.requested -= bytes;
        self.send(outbox, sent)
    }

    /// Writes what the socket takes now of `outbox` past `sent`.
    fn send(&mut self, outbox: &[u8], sent: &mut usize) -> Result<(), Error> {
        while *sent < outbox.len() {
            match self.socket.write(&outbox[*sent..]) {
                Ok(0) => return Err(lost_connection(&"the server takes nothing more")),
                Ok(n) => *sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(lost_connection(&e)),
            }
        }
        Ok(())
    }
}

/// What a command from the server means for this stream.
enum ServerNotice {
    /// Nothing this stream acts on (another stream's, or one Booth does not need).
    Nothing,
    /// A playback stream's server wants this many more bytes.
    Requested(u32),
    /// The stream is over.
    Ended(Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::pulse::stream::UNCORK;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    fn connection() -> Connection {
        playback_connection().0
    }

    /// A connection for a stereo f32 stream, and the server's end of its socket.
    fn playback_connection() -> (Connection, UnixStream) {
        let (socket, server) = UnixStream::pair().unwrap();
        socket.set_nonblocking(true).unwrap();
        let r = Connection {
            socket,
            inbox: Vec::new(),
            version: protocol::MAX_VERSION,
            channel: 7,
            stream_index: 70,
            output: false,
            channels: 2,
            frame_bytes: 8,
            period: Duration::from_millis(20),
            start: Instant::now(),
            latency: Duration::ZERO,
            requested: 0,
            seq: 3,
        };
        (r, server)
    }

    fn data_message(channel: u32, samples: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        let desc = protocol::Descriptor {
            length: (samples.len() * 4) as u32,
            channel,
            offset: 0,
            flags: protocol::DescriptorFlags::empty(),
        };
        protocol::write_descriptor(&mut out, &desc).unwrap();
        for s in samples {
            out.extend_from_slice(&s.to_ne_bytes());
        }
        out
    }

    fn command_message(command: &protocol::Command) -> Vec<u8> {
        let mut out = Vec::new();
        protocol::write_command_message(&mut out, u32::MAX, command, protocol::MAX_VERSION)
            .unwrap();
        out
    }

    #[test]
    fn samples_of_this_stream_are_taken_across_split_reads() {
        let mut r = connection();
        let mut bytes = data_message(7, &[0.5, -0.5, 0.25, -0.25]);
        bytes.extend(data_message(8, &[9.0, 9.0]));
        bytes.extend(command_message(&protocol::Command::Overflow(7)));
        bytes.extend(data_message(7, &[1.0, -1.0]));
        let mut samples = Samples::F32(Vec::new());
        // Fed a few bytes at a time, as reads may split messages anywhere.
        for chunk in bytes.chunks(5) {
            r.inbox.extend_from_slice(chunk);
            assert!(r.take_messages(Some(&mut samples)).is_none());
        }
        let Samples::F32(samples) = samples else {
            panic!("f32 samples became i16");
        };
        assert_eq!(samples, [0.5, -0.5, 0.25, -0.25, 1.0, -1.0]);
        assert!(r.inbox.is_empty());
    }

    #[test]
    fn sixteen_bit_samples_are_taken_whole() {
        let mut r = connection();
        let mut bytes = Vec::new();
        let values: [i16; 4] = [16_384, -16_384, i16::MAX, i16::MIN];
        let desc = protocol::Descriptor {
            length: 8,
            channel: 7,
            offset: 0,
            flags: protocol::DescriptorFlags::empty(),
        };
        protocol::write_descriptor(&mut bytes, &desc).unwrap();
        for v in values {
            bytes.extend_from_slice(&v.to_ne_bytes());
        }
        let mut samples = Samples::I16(Vec::new());
        for chunk in bytes.chunks(3) {
            r.inbox.extend_from_slice(chunk);
            assert!(r.take_messages(Some(&mut samples)).is_none());
        }
        assert_eq!(samples.len(), 4);
        samples.consume(2);
        let Samples::I16(samples) = samples else {
            panic!("i16 samples became f32");
        };
        assert_eq!(samples, [i16::MAX, i16::MIN]);
    }

    #[test]
    fn a_killed_or_moved_stream_ends_and_others_do_not() {
        let mut r = connection();
        let mut samples = Samples::F32(Vec::new());
        r.inbox = command_message(&protocol::Command::RecordStreamKilled(8));
        assert!(r.take_messages(Some(&mut samples)).is_none());
        r.inbox = command_message(&protocol::Command::RecordStreamKilled(7));
        let why = r.take_messages(Some(&mut samples)).unwrap();
        assert_eq!(why.kind(), ErrorKind::DeviceNotAvailable);
        assert!(why.to_string().contains("removed"), "{why}");

        let moved = |stream_index| {
            command_message(&protocol::Command::RecordStreamMoved(
                protocol::RecordStreamMovedParams {
                    stream_index,
                    device_index: 3,
                    device_name: c"mic".to_owned(),
                    device_suspended: false,
                    buffer_attr: protocol::stream::BufferAttr::default(),
                    configured_source_latency: 0,
                },
            ))
        };
        r.inbox = moved(71);
        assert!(r.take_messages(Some(&mut samples)).is_none());
        r.inbox = moved(70);
        assert!(r.take_messages(Some(&mut samples)).is_some());
    }

    #[test]
    fn playback_sends_what_the_server_asked_for_in_whole_frames_and_corks_between_messages() {
        let (mut r, mut server) = playback_connection();
        r.output = true;
        // Two requests, the second not a whole frame: 3 frames and a half asked for.
        let request = |length| {
            command_message(&protocol::Command::Request(protocol::Request {
                channel: 7,
                length,
            }))
        };
        r.inbox = request(16);
        r.inbox.extend(request(12));
        // Another stream's request is not this one's.
        r.inbox.extend(command_message(&protocol::Command::Request(
            protocol::Request {
                channel: 8,
                length: 800,
            },
        )));
        assert!(r.take_messages(None).is_none());
        assert_eq!(r.requested, 28);

        let mut samples = Samples::F32(Vec::new());
        let calls = Arc::new(AtomicU32::new(0));
        let called = Arc::clone(&calls);
        let mut data: PlayCallback = Box::new(move |d: &mut Data, _: &OutputCallbackInfo| {
            called.fetch_add(1, Ordering::Relaxed);
            let out = d.as_slice_mut::<f32>().unwrap();
            for (i, s) in out.iter_mut().enumerate() {
                *s = i as f32;
            }
        });
        let (mut outbox, mut sent) = (Vec::new(), 0);
        let cork = AtomicU8::new(UNCORK);
        r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
            .unwrap();
        assert_eq!(cork.load(Ordering::Relaxed), 0, "the start was sent");
        // The half frame stays asked for.
        assert_eq!(r.requested, 4);

        let mut wire = vec![0u8; 4096];
        let n = server.read(&mut wire).unwrap();
        let wire = &wire[..n];
        // First the start (a command on channel -1), then one data message of 3 frames.
        let command = protocol::read_descriptor(&mut &wire[..]).unwrap();
        assert_eq!(command.channel, u32::MAX);
        let at = protocol::DESCRIPTOR_SIZE + command.length as usize;
        let mut body = std::io::Cursor::new(&wire[protocol::DESCRIPTOR_SIZE..at]);
        let (_, sent_command) =
            protocol::Command::read_tag_prefixed(&mut body, protocol::MAX_VERSION).unwrap();
        assert!(matches!(
            sent_command,
            protocol::Command::CorkPlaybackStream(p) if p.channel == 7 && !p.cork
        ));
        let desc = protocol::read_descriptor(&mut &wire[at..]).unwrap();
        assert_eq!((desc.channel, desc.length), (7, 24));
        let values: Vec<f32> = wire[at + protocol::DESCRIPTOR_SIZE..]
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);

        // Nothing more asked for: nothing sent, the callback not called.
        r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
            .unwrap();
        let mut more = [0u8; 16];
        server.set_nonblocking(true).unwrap();
        assert!(server.read(&mut more).is_err(), "nothing was asked for");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_removed_output_ends_the_playback() {
        let (mut r, _server) = playback_connection();
        r.output = true;
        // A record stream's end on the same channel number is not this stream's.
        r.inbox = command_message(&protocol::Command::RecordStreamKilled(7));
        assert!(r.take_messages(None).is_none());
        r.inbox = command_message(&protocol::Command::PlaybackStreamKilled(7));
        let why = r.take_messages(None).unwrap();
        assert!(why.to_string().contains("output was removed"), "{why}");
    }

    #[test]
    fn a_server_that_stops_reading_holds_the_rest_for_later_and_the_pump_never_waits() {
        let (mut r, mut server) = playback_connection();
        r.output = true;
        // Far more than a socket buffers: the write takes part, the rest waits.
        r.requested = 2 * 1024 * 1024;
        let mut samples = Samples::F32(Vec::new());
        let mut data: PlayCallback = Box::new(|_: &mut Data, _: &OutputCallbackInfo| {});
        let (mut outbox, mut sent) = (Vec::new(), 0);
        let cork = AtomicU8::new(0);
        let began = Instant::now();
        r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
            .unwrap();
        assert!(began.elapsed() < Duration::from_secs(1));
        assert!(
            sent > 0 && sent < outbox.len(),
            "sent {sent} of {}",
            outbox.len()
        );
        // A pause asked for now waits for the message in flight to go whole.
        cork.store(CORK, Ordering::Relaxed);
        r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
            .unwrap();
        assert_eq!(cork.load(Ordering::Relaxed), CORK);
        // The server reads everything: the rest goes, then the pause.
        let total = outbox.len();
        let reader = std::thread::spawn(move || {
            let mut got = 0usize;
            let mut buf = vec![0u8; 1 << 16];
            server
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            while let Ok(n) = server.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
            got
        });
        let until = Instant::now() + Duration::from_secs(5);
        while cork.load(Ordering::Relaxed) != 0 && Instant::now() < until {
            r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
                .unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(cork.load(Ordering::Relaxed), 0, "the pause was never sent");
        let pause = outbox.len();
        drop(r);
        assert_eq!(reader.join().unwrap(), total + pause);
    }

    #[test]
    fn junk_from_the_server_is_an_error_not_a_panic() {
        let mut r = connection();
        let mut samples = Samples::F32(Vec::new());
        // A command message whose body is not a command: ignored.
        let mut junk = Vec::new();
        let desc = protocol::Descriptor {
            length: 3,
            channel: u32::MAX,
            offset: 0,
            flags: protocol::DescriptorFlags::empty(),
        };
        protocol::write_descriptor(&mut junk, &desc).unwrap();
        junk.extend_from_slice(&[0xff, 0x00, 0x13]);
        r.inbox = junk;
        assert!(r.take_messages(Some(&mut samples)).is_none());
        // A data message whose length is not whole samples: the whole samples are kept.
        let mut odd = data_message(7, &[0.5]);
        odd[3] = 6;
        odd.extend_from_slice(&[1, 2]);
        r.inbox = odd;
        assert!(r.take_messages(Some(&mut samples)).is_none());
        assert!(matches!(&samples, Samples::F32(v) if v == &[0.5]));
        // A length no server sends: the connection is given up, nothing is waited for.
        let mut huge = data_message(7, &[]);
        huge[0] = 0x7f;
        r.inbox = huge;
        assert!(r.take_messages(Some(&mut samples)).is_some());
    }
}
