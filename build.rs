fn main() -> Result<(), Box<dyn std::error::Error>> {
    // protoc comes from the protoc-bin-vendored crate: nothing to install.
    // SAFETY: build scripts are single-threaded.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::configure();
    // The Analysis and what it holds also serialise to the JSON of `callqa analyze` (but for
    // enums, which are numbers here): a batch run through the service writes what a local one does.
    for message in [
        "Analysis",
        "Timings",
        "RoleMetrics",
        "TalkMetrics",
        "QuestionMatch",
        "QuestionResult",
        "Coverage",
        "StrategyPack",
        "CompetitorMention",
        "EmotionScores",
        "TurnEmotion",
        "Moment",
        "RoleEmotion",
        "EmotionAlert",
        "EmotionReport",
        "SummaryItem",
        "Objection",
        "Commitment",
        "Summary",
        "Evidence",
        "SignalScore",
        "DimensionScore",
        "Scorecard",
        "Turn",
        "Word",
        "Prosody",
        "RedactedSpan",
        "Overall",
    ] {
        config = config.type_attribute(
            format!(".callqa.v1.{message}"),
            "#[derive(serde::Serialize)]",
        );
    }
    config
        .file_descriptor_set_path(out.join("callqa_descriptor.bin"))
        .compile_protos(
            &[
                "proto/callqa/v1/common.proto",
                "proto/callqa/v1/analysis.proto",
                "proto/callqa/v1/callqa.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
