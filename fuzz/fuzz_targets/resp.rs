//! Arbitrary bytes as a server's reply stream: decoded whole (`core::resp::value`) and read in
//! the chunks the input chooses through the `Reader` into an `Inflight` with jobs of each kind
//! waiting (a command, a pipeline, a transaction). Nothing may panic, loop forever or allocate
//! from a length prefix; a decoded value never claims more bytes than it was given.
#![no_main]

use std::time::{Duration, Instant};

use app_redis::core::resp;
use app_redis::core::wire::{Inflight, Reader};
use app_redis::core::work::Work;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, end))) = resp::value(data, 0, 0) {
        assert!(end <= data.len());
    }
    // The first byte picks the jobs waiting, the second the read size.
    let (Some(&jobs), Some(&chunk)) = (data.first(), data.get(1)) else {
        return;
    };
    let stream = &data[2..];
    let mut inflight = Inflight::new(Duration::from_secs(5));
    let mut sent = Vec::new();
    let now = Instant::now();
    for i in 0..(jobs % 8) {
        let cmds = |n: u8| (0..n).map(|_| redis::cmd("PING")).collect();
        let work = match (jobs >> 3).wrapping_add(i) % 3 {
            0 => Work::One(redis::cmd("PING")),
            1 => Work::Many {
                cmds: cmds(1 + i % 3),
                atomic: false,
            },
            _ => Work::Many {
                cmds: cmds(1 + i % 3),
                atomic: true,
            },
        };
        let _ = inflight.push(&work, i, &mut sent, now);
    }
    let chunk = usize::from(chunk.max(1));
    let mut reader = Reader::default();
    let mut done = Vec::new();
    for part in stream.chunks(chunk) {
        reader.extend(part);
        if inflight.take(&mut reader, &mut done).is_err() {
            break;
        }
    }
    // Each job is answered at most once.
    let mut ids: Vec<u8> = done.iter().map(|(id, _)| *id).collect();
    ids.dedup();
    assert_eq!(ids.len(), done.len());
});
