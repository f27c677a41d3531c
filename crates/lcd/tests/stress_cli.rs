//! End-to-end tests of `lcd stress` output: the JSON summary's keys (the benchmark reads them), the
//! five lifecycle phases, the client's memory and fd snapshots, and that a run leaves nothing
//! behind. Short runs (a few seconds); see `support` for the fixture.

mod support;

use support::Lcd;

fn number(summary: &serde_json::Value, key: &str) -> f64 {
    summary[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} should be a number: {summary}"))
}

#[test]
fn stress_json_has_every_phase_and_the_client_snapshots() {
    let lcd = Lcd::new("stress");
    let out = lcd.run(&[
        "stress",
        "-c",
        "2",
        "-d",
        "4s",
        "--json",
        "--rootfs",
        lcd.rootfs(),
    ]);
    let summary: serde_json::Value =
        serde_json::from_str(out.ok().trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(summary["mode"], "lifecycle", "{summary}");
    assert_eq!(summary["failures"], 0, "{summary}");
    assert!(summary["first_error"].is_null(), "{summary}");
    let ok = summary["ok"].as_u64().expect("ok");
    assert!(ok > 0, "no container ran: {summary}");
    assert!(number(&summary, "per_second") > 0.0);
    // Every phase of a lifecycle is timed once per container.
    for phase in ["create", "start", "wait", "delete", "remove"] {
        let p = &summary["phases"][phase];
        assert_eq!(p["count"], ok, "{phase}: {summary}");
        let (p50, p95, p99, max) = (
            number(p, "p50_ms"),
            number(p, "p95_ms"),
            number(p, "p99_ms"),
            number(p, "max_ms"),
        );
        assert!(
            0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max,
            "{phase}: {p}"
        );
    }
    assert_eq!(summary["per_op"]["count"], ok, "{summary}");
    // The client's snapshots: before, after the warm-up (2 s into a 4 s run), at the end.
    assert_eq!(number(&summary, "warmup_s"), 2.0, "{summary}");
    for key in [
        "client_cpu_ms_per_op",
        "client_fds_before",
        "client_fds_after_warmup",
        "client_fds_after",
        "client_rss_kib_before",
        "client_rss_kib_after_warmup",
        "client_rss_kib_end",
        "client_peak_rss_kib",
    ] {
        assert!(number(&summary, key) > 0.0, "{key}: {summary}");
    }
    assert!(
        number(&summary, "client_rss_kib_end") <= number(&summary, "client_peak_rss_kib"),
        "{summary}"
    );
    lcd.assert_clean();
}

#[test]
fn stress_text_lists_the_phases_and_the_client_memory() {
    let lcd = Lcd::new("stresstext");
    let out = lcd.run(&["stress", "-d", "2s", "--rootfs", lcd.rootfs()]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("0 failures"), "{out}");
    assert!(lines[1].starts_with("PHASE"), "{out}");
    let phases: Vec<&str> = lines[2..]
        .iter()
        .take_while(|l| !l.starts_with("client"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        phases,
        ["create", "start", "wait", "delete", "remove", "(whole)"],
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("client RSS:")
            && l.contains("after warm-up")
            && l.contains("at the end")),
        "{out}"
    );
    lcd.assert_clean();
}
