//! The regression corpus: one saved minimal case per known bug (`scenarios/corpus/<flaw>.json`,
//! written by `khaos sim corpus --write scenarios/corpus`). With its flaw on, the case breaks the
//! checker the known-bugs table (`docs/known-bugs.md`) names and its history is pinned as a
//! snapshot; with no flaw, the same schedule holds (the passing twin).

use khaos_elector::flaws::{Flaw, Flaws};
use khaos_scenarios::case::SavedCase;
use khaos_scenarios::corpus;
use khaos_sim::run::{self, SimulatedRun};

fn load(flaw: Flaw) -> SavedCase {
    let path = format!(
        "{}/../scenarios/corpus/{flaw}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    SavedCase::load(path.as_ref()).unwrap_or_else(|e| {
        panic!("{e}\n(regenerate with: khaos sim corpus --flaw {flaw} --write scenarios/corpus)")
    })
}

/// What a person reads of a failing run: the flaw, the minimal schedule, and the text timeline
/// with its verdicts, failovers and violations.
fn render(flaw: Flaw, case: &SavedCase, run: &SimulatedRun) -> String {
    let mut text = format!(
        "flaw {flaw} (row {}, {})\nfaults:\n",
        flaw.row(),
        flaw.origin(),
    );
    for fault in &case.schedule.faults {
        text += &format!(
            "  at {} ms for {} ms: {}\n",
            fault.at_ms, fault.for_ms, fault.fault
        );
    }
    text + "\n" + &run.judged.timeline_text()
}

#[test]
fn every_known_bug_is_found_and_its_twin_holds() {
    let mut failures = Vec::new();
    for flaw in Flaw::ALL {
        let expected = corpus::known_bug(flaw);
        let case = load(flaw);
        assert_eq!(case.flaws, Flaws::only(flaw), "{flaw}: the case's flaws");

        let mut flawed = run::replay(&case, case.flaws).expect("the case runs");
        flawed.set_replay(format!("khaos replay scenarios/corpus/{flaw}.json"));
        let violated = flawed.violated();
        if !violated.iter().any(|v| v == expected.checker) {
            failures.push(format!(
                "{flaw}: {} did not fire (violated: {violated:?}); replay: khaos replay scenarios/corpus/{flaw}.json",
                expected.checker
            ));
            continue;
        }
        assert_eq!(
            violated, case.violated,
            "{flaw}: the checkers that fire changed since the case was saved"
        );
        insta::assert_snapshot!(flaw.name(), render(flaw, &case, &flawed));

        let twin = run::replay(&case, Flaws::NONE).expect("the twin runs");
        if !twin.ok() {
            failures.push(format!(
                "{flaw}: without the flaw the same schedule fails:\n{}replay: khaos replay --without-flaws scenarios/corpus/{flaw}.json",
                twin.judged.violations_text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
