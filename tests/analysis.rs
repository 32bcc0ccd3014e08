//! Playbook rules on real dialogues (CrossWOZ, ../shared/eval/transcripts/zh_crosswoz) and the
//! `callqa playbook` commands.

mod common;

use std::process::Command;

fn callqa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(args)
        .output()
        .expect("run callqa")
}

/// Runs callqa, expects success, and parses its JSON output.
fn callqa_json(args: &[&str]) -> serde_json::Value {
    let out = callqa(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// The first CrossWOZ dialogue as a JSONL transcript: user = customer, system = agent, 3 s turns.
fn crosswoz_transcript(edit: impl Fn(&str) -> String) -> String {
    let path = common::eval_dir().join("transcripts/zh_crosswoz/crosswoz_test_first50_turns.jsonl");
    let first = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let dialogue: serde_json::Value = serde_json::from_str(&first).unwrap();
    let mut out = String::new();
    for (i, turn) in dialogue["turns"].as_array().unwrap().iter().enumerate() {
        let role = if turn["role"] == "usr" {
            "customer"
        } else {
            "agent"
        };
        let start = i as u64 * 3_500;
        let text = edit(turn["content"].as_str().unwrap());
        out.push_str(&serde_json::json!({"role": role, "start_ms": start, "end_ms": start + 3_000, "text": text}).to_string());
        out.push('\n');
    }
    out
}

#[test]
fn the_example_playbook_is_valid_and_bad_ones_name_the_field() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/playbook.toml");
    let v = callqa_json(&["playbook", "check", example]);
    assert_eq!(
        (v["competitors"].as_u64(), v["dimensions"].as_u64()),
        (Some(4), Some(6))
    );
    assert!(v["revision"].as_str().unwrap().starts_with("sha256:"));

    let dir = std::env::temp_dir().join(format!("callqa-playbooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("name = \"x\"\nsurprise = 1\n", "unknown field `surprise`"),
        (
            "name = \"x\"\n[[competitors]]\nname = \"\"\n",
            "competitors[0].name: must not be empty",
        ),
        (
            "name = \"x\"\n[emotion]\nfrustration_alert = \"high\"\n",
            "invalid type",
        ),
        (
            "name = \"x\"\n[[key_questions]]\nid = \"q\"\nphrasings = [\"预算？\"]\nthreshold = 2.0\n",
            "key_questions[0].threshold: 2 is out of range",
        ),
    ];
    for (i, (text, says)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = callqa(&["playbook", "check", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{text:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("bad{i}.toml")),
            "names the file: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn playbook_test_finds_competitors_in_a_real_dialogue_even_as_homophones() {
    let dir = std::env::temp_dir().join(format!("callqa-playbook-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let playbook = dir.join("p.toml");
    std::fs::write(
        &playbook,
        "name = \"crosswoz\"\n[[competitors]]\nname = \"桔子水晶\"\nstrategy_pack = { title = \"酒店对标\" }\n\
         [[competitors]]\nname = \"故宫\"\nmentioned_by = \"any\"\n",
    )
    .unwrap();
    // As written, and as ASR might hear it: 桔子 (jú zi) written 橘子.
    for (name, edit) in [("exact", None), ("homophone", Some(("桔子", "橘子")))] {
        let transcript = dir.join(format!("{name}.jsonl"));
        std::fs::write(
            &transcript,
            crosswoz_transcript(|t| edit.map_or(t.to_owned(), |(a, b)| t.replace(a, b))),
        )
        .unwrap();
        let v = callqa_json(&[
            "playbook",
            "test",
            "--playbook",
            playbook.to_str().unwrap(),
            "--transcript",
            transcript.to_str().unwrap(),
        ]);
        let mentions = v["competitor_mentions"].as_array().unwrap();
        let hotel: Vec<_> = mentions
            .iter()
            .filter(|m| m["competitor"] == "桔子水晶")
            .collect();
        assert_eq!(hotel.len(), 1, "{name}: {mentions:?}");
        assert_eq!(hotel[0]["role"], "CUSTOMER");
        assert_eq!(hotel[0]["turn"], 10);
        assert_eq!(
            hotel[0]["how"],
            if name == "exact" { "exact" } else { "pinyin" }
        );
        assert_eq!(hotel[0]["strategy_pack"]["title"], "酒店对标");
        assert!(hotel[0]["sentence"].as_str().unwrap().contains("电话"));
        // 故宫 is raised by the agent (system) in turns 5 and 7.
        let palace: Vec<u64> = mentions
            .iter()
            .filter(|m| m["competitor"] == "故宫")
            .map(|m| m["turn"].as_u64().unwrap())
            .collect();
        assert_eq!(palace, vec![5, 7]);
        // Talk metrics over the same turns: 7 turns each, and the customer asked questions.
        assert_eq!(v["talk"]["customer"]["turns"], 7);
        assert!(
            v["talk"]["customer"]["questions"].as_u64().unwrap() >= 3,
            "{}",
            v["talk"]
        );
        assert_eq!(v["talk"]["agent_response_latency_ms"], 500);
        assert!(
            v["playbook_revision"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_questions_match_paraphrases_and_across_languages() {
    use callqa::analysis::playbook::Playbook;
    use callqa::analysis::questions::{MatchKind, QuestionMatcher};
    use callqa::audio::channels::Role;
    use callqa::pipeline::Turn;
    let mut embedder = callqa::engines::embedder(&common::model_dir()).unwrap();
    // Phrasings in Chinese only; the call answers in other words and in English.
    let playbook = Playbook::parse(
        "name = \"t\"\n[[key_questions]]\nid = \"phone\"\nasked_by = \"customer\"\nphrasings = [\"电话号码是多少？\"]\n\
         [[key_questions]]\nid = \"hours\"\nasked_by = \"customer\"\nwithin_minutes = 1\nphrasings = [\"营业时间是几点到几点？\"]\n\
         [[key_questions]]\nid = \"budget\"\nphrasings = [\"你们的预算大概是多少？\"]\n\
         [[key_questions]]\nid = \"team\"\nphrasings = [\"你们销售团队有多少人？\"]\n",
        "t",
    )
    .unwrap();
    let line = |role: &str, start: u64, text: &str| -> Turn {
        serde_json::from_value(serde_json::json!({"role": role, "start_ms": start, "end_ms": start + 4_000, "text": text})).unwrap()
    };
    let turns = vec![
        line(
            "agent",
            0,
            "您好，这里是星云软件。How much budget have you set aside for this?",
        ),
        line(
            "customer",
            5_000,
            "The weather is nice today. Could you tell me their phone number?",
        ),
        line("customer", 70_000, "好的。他家几点开门？"),
    ];
    let matcher = QuestionMatcher::new(&playbook, &mut embedder).unwrap();
    let coverage = matcher.coverage(&turns, &mut embedder).unwrap();
    let by_id = |id: &str| coverage.questions.iter().find(|q| q.id == id).unwrap();
    for q in &coverage.questions {
        println!(
            "{}: {:?}",
            q.id,
            q.matches
                .iter()
                .map(|m| (&m.sentence, m.score, m.how))
                .collect::<Vec<_>>()
        );
    }
    let phone = by_id("phone");
    assert!(
        phone.satisfied && phone.count == 1,
        "cross-lingual: {phone:?}"
    );
    assert_eq!(
        phone.matches[0].sentence,
        "Could you tell me their phone number?"
    );
    assert_eq!(
        (phone.matches[0].role, phone.matches[0].how),
        (Role::Customer, MatchKind::Semantic)
    );
    let budget = by_id("budget");
    assert!(
        budget.satisfied && budget.matches[0].role == Role::Agent,
        "cross-lingual, asked by the agent: {budget:?}"
    );
    // A paraphrase, but asked after its 1-minute window: asked, not counted.
    let hours = by_id("hours");
    assert!(
        hours.asked && !hours.satisfied && hours.count == 0,
        "{hours:?}"
    );
    assert_eq!(hours.matches[0].sentence, "他家几点开门？");
    assert!(!by_id("team").asked);
    assert!(
        (coverage.percent - 50.0).abs() < 1e-9,
        "{}",
        coverage.percent
    );
}

#[test]
fn key_question_detection_holds_its_measured_precision_and_recall() {
    // The same measurement as `callqa eval questions`, on the first 100 CrossWOZ test dialogues.
    let path = common::eval_dir().join("transcripts/zh_crosswoz/test.json.zip");
    let mut dialogues = callqa::eval::read_crosswoz(&path).unwrap();
    dialogues.truncate(100);
    let mut embedder = callqa::engines::embedder(&common::model_dir()).unwrap();
    let scores = callqa::eval::score_crosswoz(&dialogues, &mut embedder).unwrap();
    let prf = callqa::eval::prf_at(&scores, callqa::analysis::questions::DEFAULT_THRESHOLD);
    println!(
        "P {:.3} R {:.3} F1 {:.3}",
        prf.precision(),
        prf.recall(),
        prf.f1()
    );
    assert!(prf.true_positives > 50);
    assert!(
        prf.precision() >= 0.65 && prf.recall() >= 0.5,
        "P {:.3} R {:.3}",
        prf.precision(),
        prf.recall()
    );
}

#[test]
fn analyze_gives_a_complete_analysis_of_a_real_call_and_an_empty_one_for_silence() {
    common::model_dir();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/playbook.toml");
    let call = common::eval_dir()
        .join("transcripts/en_vcon_tadhack_synthetic/09e8fdbd-14d9-4cf9-a702-2893b7d2edd3.mp3");
    let v = callqa_json(&[
        "analyze",
        call.to_str().unwrap(),
        "--playbook",
        example,
        "--rep-id",
        "rep-7",
        "--call-id",
        "c-1",
    ]);
    assert_eq!(
        (v["call_id"].as_str(), v["rep_id"].as_str()),
        (Some("c-1"), Some("rep-7"))
    );
    assert!(v["note"].is_null());
    let turns = v["transcript"]["turns"].as_array().unwrap();
    assert!(turns.len() > 3, "mono segments stay separate turns");
    let a = &v["analysis"];
    assert_eq!(a["playbook_revision"], v["playbook_revision"]);
    assert_eq!(a["key_questions"]["questions"].as_array().unwrap().len(), 5);
    assert_eq!(a["emotion"]["turns"].as_array().unwrap().len(), turns.len());
    assert!(a["talk"]["call_ms"].as_u64().unwrap() > 40_000);
    assert!(a["competitor_mentions"].is_array());
    // The agent's greeting ("thank you for calling …") is labelled by the mono heuristic.
    assert_eq!(turns[0]["role"], "AGENT", "{}", turns[0]);
    assert_eq!(turns[0]["role_source"], "heuristic");

    let silence = std::env::temp_dir().join(format!("callqa-silence-{}.wav", std::process::id()));
    std::fs::write(
        &silence,
        common::wav_pcm16(&[vec![0.0; 16_000 * 5]], 16_000),
    )
    .unwrap();
    let v = callqa_json(&["analyze", silence.to_str().unwrap(), "--playbook", example]);
    assert_eq!(v["note"], "no speech was found in the recording");
    assert!(v["transcript"]["turns"].as_array().unwrap().is_empty());
    assert_eq!(v["analysis"]["key_questions"]["percent"], 0.0);
    std::fs::remove_file(&silence).unwrap();
}

#[test]
fn the_summary_finds_objections_and_dated_commitments() {
    // A constructed sales exchange (the shared dialogues have no sales objections or promises).
    let lines = [
        (
            "agent",
            "您好，这里是星云软件，我是小王。请问您现在用什么系统管理客户？",
        ),
        (
            "customer",
            "我们现在用表格，想找一个能自动提醒跟进的CRM系统。",
        ),
        ("agent", "明白，我们的系统可以自动提醒。"),
        ("customer", "不过你们的价格是不是太贵了？我们预算有限。"),
        ("agent", "我下周三给您发一份详细报价，再安排一次演示。"),
    ];
    let dir = std::env::temp_dir().join(format!("callqa-summary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let transcript = dir.join("call.jsonl");
    let body: String = lines
        .iter()
        .enumerate()
        .map(|(i, (role, text))| {
            let start = i as u64 * 5_000;
            format!("{}\n", serde_json::json!({"role": role, "start_ms": start, "end_ms": start + 4_500, "text": text}))
        })
        .collect();
    std::fs::write(&transcript, body).unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/playbook.toml");
    // 2026-11-26 is a Thursday: 下周三 is 2026-12-02.
    let v = callqa_json(&[
        "playbook",
        "test",
        "--playbook",
        example,
        "--transcript",
        transcript.to_str().unwrap(),
        "--call-date",
        "2026-11-26",
    ]);
    let s = &v["summary"];
    let objections: Vec<&str> = s["objections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["text"].as_str().unwrap())
        .collect();
    assert!(
        objections.iter().any(|o| o.contains("太贵")),
        "{objections:?}"
    );
    assert!(
        objections.iter().all(|o| !o.contains("星云")),
        "the agent raises no objections: {objections:?}"
    );
    let first = &s["commitments"][0];
    assert_eq!(
        (
            first["role"].as_str(),
            first["due"].as_str(),
            first["due_phrase"].as_str()
        ),
        (Some("AGENT"), Some("2026-12-02"), Some("下周三"))
    );
    assert_eq!(first["turn"], 4);
    std::fs::remove_dir_all(&dir).unwrap();
}
