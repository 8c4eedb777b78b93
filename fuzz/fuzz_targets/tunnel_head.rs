//! The head of an app's answer to a WebSocket upgrade, parsed by hubgate's own tunnel: any bytes
//! give an error or a response head, never a panic, and what is accepted can be written on to the
//! browser without a line break an app could use to add headers of its own.
#![no_main]

use hubgate::proxy::tunnel::parse_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(head) = parse_head(data) else {
        return;
    };
    assert!((100..1000).contains(&head.status.as_u16()));
    for (name, value) in head.headers.iter() {
        assert!(!name.as_str().contains(['\r', '\n', ':']), "{name:?}");
        assert!(!value.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n'), "{value:?}");
    }
});
