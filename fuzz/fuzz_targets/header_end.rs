//! `server.header_read_timeout` watches reads for the empty line ending a request header. However
//! the bytes are split across reads, it finds the end exactly where a reading of all of them at
//! once does.
#![no_main]

use hubgate::proxy::header_deadline::HeaderEnd;
use libfuzzer_sys::fuzz_target;

/// The reference: the first line end (LF) whose line holds only CRs, after something else began.
fn ends_at(bytes: &[u8]) -> Option<usize> {
    let mut started = false;
    let mut line_start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            let blank = bytes[line_start..i].iter().all(|c| *c == b'\r');
            if blank && started {
                return Some(i);
            }
            started |= !blank;
            line_start = i + 1;
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    // First byte: the read size (1–64), the rest: the bytes read.
    let Some((&size, bytes)) = data.split_first() else {
        return;
    };
    let size = usize::from(size % 64) + 1;
    let mut end = HeaderEnd::new();
    let found = bytes
        .chunks(size)
        .position(|chunk| end.complete_in(chunk))
        .map(|n| n * size);
    let expected = ends_at(bytes).map(|i| i / size * size);
    assert_eq!(found, expected, "read size {size}");
});
