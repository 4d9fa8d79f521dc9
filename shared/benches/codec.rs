//! Codec and framing throughput: `cargo bench -p snow-shared --bench codec`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use snow_shared::codec::{decode, encode};
use snow_shared::frame::{encode_frame, FrameDecoder};
use snow_shared::{NodeName, Pid, Term};

fn cases() -> Vec<(&'static str, Term)> {
    let pid = Pid::new(NodeName::parse("app@db1.example.com").unwrap(), 4242, 0x5eed_0001);
    let small = Term::tuple([Term::atom("msg"), Term::Pid(pid), Term::Int(42), Term::binary([7u8; 32])]);
    // About 1 KiB: 32 entries of a 8-byte key and a 16-byte value.
    let map = Term::map((0..32).map(|i| (format!("key-{i:04}"), format!("value-{i:010}"))));
    let binary = Term::binary(vec![0xabu8; 64 << 10]);
    let ints = Term::list((0..1000i64).map(|i| i * 7 - 500));
    vec![("small_msg", small), ("map_1k", map), ("binary_64k", binary), ("list_1000_ints", ints)]
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for (name, term) in cases() {
        let bytes = encode(&term);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), &term, |b, t| b.iter(|| encode(black_box(t))));
        group.bench_with_input(BenchmarkId::new("decode", name), &bytes, |b, bytes| {
            b.iter(|| decode(black_box(bytes)).unwrap())
        });
    }
    group.finish();
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode");
    for payload_len in [64usize, 1024, 64 << 10] {
        // 1 MiB of frames, fed in 64 KiB reads as a socket would deliver them.
        let count = (1 << 20) / (payload_len + 4);
        let payload = vec![0x5au8; payload_len];
        let mut stream = Vec::new();
        for _ in 0..count {
            encode_frame(&payload, &mut stream).unwrap();
        }
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(payload_len), &stream, |b, stream| {
            b.iter(|| {
                let mut decoder = FrameDecoder::default();
                let mut n = 0;
                for read in stream.chunks(64 << 10) {
                    decoder.feed(read);
                    while let Some(frame) = decoder.next_frame().unwrap() {
                        n += frame.len();
                    }
                }
                black_box(n)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, codec, frames);
criterion_main!(benches);
