//! The gRPC requests' validation on any bytes: Transcribe hotwords, TestPlaybook turns and
//! playbook text, stream configs' ids, and playbook files. Never a panic; what passes is what the
//! engines can take (no NUL reaches Whisper's prompt, no turn over its limit reaches the encoder).
#![no_main]

use callqa::analysis::playbook::Playbook;
use callqa::proto::{StreamConfig, TestPlaybookRequest, TranscribeRequest};
use callqa::server::validate;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn prompt_is_clean(hotwords: &[String]) {
    for language in ["zh", "en"] {
        let prompt = callqa::asr::initial_prompt(language, hotwords);
        assert!(!prompt.contains('\0'));
    }
}

fuzz_target!(|data: &[u8]| {
    let [which, rest @ ..] = data else { return };
    match which % 4 {
        0 => {
            if let Ok(req) = TranscribeRequest::decode(rest)
                && validate::hotwords(&req.hotwords).is_ok()
            {
                assert!(req.hotwords.len() <= validate::MAX_HOTWORDS);
                prompt_is_clean(&req.hotwords);
            }
        }
        1 => {
            if let Ok(req) = TestPlaybookRequest::decode(rest) {
                if let Ok(turns) = validate::turns(req.turns) {
                    assert!(turns.len() <= validate::MAX_TURNS);
                    assert!(turns.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
                    for t in &turns {
                        assert!(t.text.chars().count() <= validate::MAX_TURN_CHARS);
                        assert!(t.end_ms >= t.start_ms);
                    }
                }
                if let Ok(p) = validate::playbook_toml(&req.playbook_toml) {
                    prompt_is_clean(&p.hotwords());
                }
            }
        }
        2 => {
            if let Ok(c) = StreamConfig::decode(rest) {
                let _ = validate::call_ids(&c.call_id, &c.rep_id, &c.customer_id, &c.playbook);
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(rest)
                && let Ok(p) = Playbook::parse(text, "fuzz.toml")
            {
                prompt_is_clean(&p.hotwords());
                assert!(
                    p.coaching.circuit_breaker.training_hours
                        <= callqa::analysis::playbook::MAX_TRAINING_HOURS
                );
            }
        }
    }
});
