//! What answering one WHEP offer costs the room's task: a str0m peer built and the offer
//! accepted, with a DTLS certificate made for the offer (how every offer was answered before
//! the server made one certificate at start) against the server's one certificate.
//!
//! `cargo bench --bench offers`. A measurement only: nothing here passes or fails on a number.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use booth::rtc::{ServerCertificate, rtc_config};
use criterion::{Criterion, criterion_group, criterion_main};
use str0m::Candidate;
use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind};

/// A listener's offer, as a str0m client makes it.
fn offer() -> String {
    let mut client = rtc_config().build(Instant::now());
    let local = SocketAddr::from(([127, 0, 0, 1], 40000));
    if let Ok(c) = Candidate::host(local, "udp") {
        client.add_local_candidate(c);
    }
    let mut change = client.sdp_api();
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let Some((offer, _pending)) = change.apply() else {
        panic!("the client made no offer");
    };
    offer.to_sdp_string()
}

fn answer(config: str0m::RtcConfig, offer: &str) -> String {
    let mut rtc = config.build(Instant::now());
    let server = SocketAddr::from(([127, 0, 0, 1], 50000));
    if let Ok(c) = Candidate::host(server, "udp") {
        rtc.add_local_candidate(c);
    }
    let Ok(parsed) = SdpOffer::from_sdp_string(offer) else {
        panic!("the offer does not parse");
    };
    match rtc.sdp_api().accept_offer(parsed) {
        Ok(a) => a.to_sdp_string(),
        Err(e) => panic!("the offer cannot be answered: {e}"),
    }
}

fn offers(c: &mut Criterion) {
    let offer = offer();
    let Ok(certificate) = ServerCertificate::generate() else {
        panic!("no certificate");
    };
    let mut group = c.benchmark_group("whep_offer");
    group.bench_function("certificate_per_offer", |b| {
        b.iter(|| black_box(answer(rtc_config().set_ice_lite(true), &offer)));
    });
    group.bench_function("server_certificate", |b| {
        b.iter(|| black_box(answer(certificate.server_config(), &offer)));
    });
    group.bench_function("certificate_alone", |b| {
        b.iter(|| black_box(ServerCertificate::generate().is_ok()));
    });
    group.finish();
}

criterion_group!(benches, offers);
criterion_main!(benches);
