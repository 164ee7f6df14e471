//! Fuzz target: decoding arbitrary bytes as a BGP message never panics, every error maps
//! to a NOTIFICATION, and whatever decodes cleanly re-encodes to something that decodes to
//! the same message.
#![no_main]

use bgp::wire::{AddPathFamilies, Context, Message, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the negotiated context, so every layout gets exercised.
    let Some((&knobs, bytes)) = data.split_first() else {
        return;
    };
    let ctx = Context {
        four_octet_as: knobs & 1 != 0,
        extended_message: knobs & 2 != 0,
        add_path: AddPathFamilies {
            ipv4_unicast: knobs & 4 != 0,
            ipv6_unicast: knobs & 8 != 0,
        },
        external_peer: knobs & 16 != 0,
    };
    match frame(bytes, ctx.max_message_len()) {
        Ok(Some(len)) => assert!(len <= bytes.len()),
        Ok(None) => {}
        Err(e) => {
            let _ = e.notification();
        }
    }
    match Message::decode(bytes, &ctx) {
        Err(e) => {
            let _ = e.notification();
        }
        Ok(message) => {
            if let Message::Update(u) = &message
                && u.error.is_some()
            {
                return;
            }
            let Ok(encoded) = message.to_bytes(&ctx) else {
                return;
            };
            let again = Message::decode(&encoded, &ctx).expect("re-encoded message decodes");
            assert_eq!(again, message);
        }
    }
});
