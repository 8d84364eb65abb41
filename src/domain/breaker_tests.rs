use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn settings() -> BreakerSettings {
    BreakerSettings::default()
}

fn fail(r: &BreakerRecord, now: DateTime<Utc>) -> Step {
    r.observe(
        &Observation::Failure {
            class: ErrorClass::ProviderError,
            message: "boom",
        },
        &settings(),
        false,
        now,
    )
}

fn ok(r: &BreakerRecord, now: DateTime<Utc>) -> Step {
    r.observe(&Observation::Success, &settings(), false, now)
}

fn failed_n(n: u32, now: DateTime<Utc>) -> (BreakerRecord, Vec<Option<BreakerEventKind>>) {
    let mut r = BreakerRecord::default();
    let mut events = Vec::new();
    for _ in 0..n {
        let (next, e) = fail(&r, now);
        r = next;
        events.push(e);
    }
    (r, events)
}

#[test]
fn opens_exactly_at_the_threshold() {
    let (r, events) = failed_n(4, t0());
    assert_eq!(r.state, BreakerState::Closed);
    assert_eq!(r.failure_count, 4);
    assert!(events.iter().all(Option::is_none));
    let (r, e) = fail(&r, t0());
    assert_eq!(e, Some(BreakerEventKind::Opened));
    assert_eq!(r.state, BreakerState::Open);
    assert_eq!(r.opened_at, Some(t0()));
    assert_eq!(r.open_until, Some(t0() + Duration::minutes(30)));
    assert_eq!(r.last_error.as_deref(), Some("boom"));
    let ev = r.event(BreakerEventKind::Opened, 7, "p", t0());
    assert_eq!(ev.expected_recovery, r.open_until);
    assert_eq!(ev.failure_count, 5);
}

#[test]
fn success_resets_the_closed_count() {
    let (r, _) = failed_n(4, t0());
    let (r, e) = ok(&r, t0());
    assert_eq!(
        (r.state, r.failure_count, e),
        (BreakerState::Closed, 0, None)
    );
    let (r, _) = fail(&r, t0());
    assert_eq!(r.failure_count, 1);
}

#[test]
fn open_until_the_duration_has_elapsed_exactly() {
    let (r, _) = failed_n(5, t0());
    let until = t0() + Duration::minutes(30);
    let just_before = until - Duration::milliseconds(1);
    assert_eq!(r.open_at(&settings(), just_before), Some(until));
    let (eff, e) = r.effective(&settings(), just_before);
    assert_eq!((eff.state, e), (BreakerState::Open, None));
    assert_eq!(r.open_at(&settings(), until), None);
    let (eff, e) = r.effective(&settings(), until);
    assert_eq!(eff.state, BreakerState::HalfOpen);
    assert_eq!(e, Some(BreakerEventKind::HalfOpened));
}

#[test]
fn half_open_closes_after_the_success_threshold() {
    let (r, _) = failed_n(5, t0());
    let later = t0() + Duration::minutes(31);
    let (r, e) = ok(&r, later);
    assert_eq!(r.state, BreakerState::HalfOpen);
    assert_eq!(r.half_open_successes, 1);
    assert_eq!(e, Some(BreakerEventKind::HalfOpened));
    let (r, e) = ok(&r, later);
    assert_eq!(e, Some(BreakerEventKind::Closed));
    assert_eq!(r, BreakerRecord::default());
}

#[test]
fn a_failure_in_half_open_reopens_for_a_full_duration() {
    let (r, _) = failed_n(5, t0());
    let later = t0() + Duration::minutes(31);
    let (r, _) = ok(&r, later);
    let (r, e) = fail(&r, later);
    assert_eq!(e, Some(BreakerEventKind::Opened));
    assert_eq!(r.state, BreakerState::Open);
    assert_eq!(r.half_open_successes, 0);
    assert_eq!(r.open_until, Some(later + Duration::minutes(30)));
}

#[test]
fn failure_while_open_does_not_extend_the_period() {
    let (r, _) = failed_n(5, t0());
    let (r2, e) = fail(&r, t0() + Duration::minutes(10));
    assert_eq!(e, None);
    assert_eq!(r2.open_until, r.open_until);
    assert_eq!(r2.state, BreakerState::Open);
    // A late success while open changes nothing either.
    let (r3, e) = ok(&r2, t0() + Duration::minutes(10));
    assert_eq!((r3, e), (r2, None));
}

#[test]
fn network_errors_count_only_when_enabled() {
    let net = Observation::Failure {
        class: ErrorClass::SystemError,
        message: "connect refused",
    };
    let r = BreakerRecord::default();
    let (off, _) = r.observe(&net, &settings(), false, t0());
    assert_eq!(off.failure_count, 0);
    let (on, _) = r.observe(&net, &settings(), true, t0());
    assert_eq!(on.failure_count, 1);
}

#[test]
fn aborts_404s_and_client_errors_never_count() {
    let r = BreakerRecord::default();
    for class in [
        ErrorClass::ClientAbort,
        ErrorClass::NotFound,
        ErrorClass::NonRetryableClientError,
    ] {
        let obs = Observation::Failure {
            class,
            message: "x",
        };
        let (next, e) = r.observe(&obs, &settings(), true, t0());
        assert_eq!((next.failure_count, e), (0, None), "{class:?}");
    }
}

#[test]
fn custom_thresholds_are_respected() {
    let s = BreakerSettings {
        failure_threshold: 1,
        open_duration_ms: 60_000,
        half_open_success_threshold: 1,
    };
    let obs = Observation::Failure {
        class: ErrorClass::ProviderError,
        message: "x",
    };
    let (r, e) = BreakerRecord::default().observe(&obs, &s, false, t0());
    assert_eq!(e, Some(BreakerEventKind::Opened));
    assert_eq!(r.open_until, Some(t0() + Duration::seconds(60)));
    let (r, e) = r.observe(
        &Observation::Success,
        &s,
        false,
        t0() + Duration::seconds(60),
    );
    assert_eq!(
        (r.state, e),
        (BreakerState::Closed, Some(BreakerEventKind::Closed))
    );
}

#[test]
fn probe_success_half_opens_early_and_only_from_open() {
    let (r, _) = failed_n(5, t0());
    let (h, e) = r.probe_succeeded(&settings(), t0() + Duration::minutes(1));
    assert_eq!(
        (h.state, e),
        (BreakerState::HalfOpen, Some(BreakerEventKind::HalfOpened))
    );
    let (c, e) = BreakerRecord::default().probe_succeeded(&settings(), t0());
    assert_eq!((c.state, e), (BreakerState::Closed, None));
}

#[test]
fn a_zero_threshold_disables_the_breaker() {
    let s = BreakerSettings {
        failure_threshold: 0,
        ..settings()
    };
    let (open, _) = failed_n(5, t0());
    assert_eq!(open.open_at(&s, t0()), None);
    let obs = Observation::Failure {
        class: ErrorClass::ProviderError,
        message: "x",
    };
    let (r, _) = BreakerRecord::default().observe(&obs, &s, false, t0());
    assert_eq!(r.state, BreakerState::Closed);
}

#[test]
fn records_round_trip_through_json() {
    let (r, _) = failed_n(5, t0());
    let json = serde_json::to_string(&r).unwrap_or_default();
    let back: BreakerRecord = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(back, r);
}

fn ttl() -> Duration {
    Duration::seconds(120)
}

/// A record half-open at `t0() + 31 min`.
fn half_open() -> (BreakerRecord, DateTime<Utc>) {
    let (r, _) = failed_n(5, t0());
    let later = t0() + Duration::minutes(31);
    let ((r, e), adm) = r.admit(&settings(), ttl(), later);
    assert_eq!(e, Some(BreakerEventKind::HalfOpened));
    assert_eq!(adm, Admission::Trial);
    let r = BreakerRecord {
        trials: vec![],
        ..r
    };
    (r, later)
}

#[test]
fn closed_admits_without_a_trial_and_open_refuses_until_its_end() {
    let ((r, e), adm) = BreakerRecord::default().admit(&settings(), ttl(), t0());
    assert_eq!((adm, e), (Admission::Pass, None));
    assert_eq!(r, BreakerRecord::default());
    let (open, _) = failed_n(5, t0());
    let until = t0() + Duration::minutes(30);
    let ((_, e), adm) = open.admit(&settings(), ttl(), t0() + Duration::minutes(29));
    assert_eq!((adm, e), (Admission::Refused { until: Some(until) }, None));
    assert_eq!(open.unavailable(&settings(), t0()), Some(Some(until)));
}

#[test]
fn half_open_admits_at_most_the_success_threshold_of_trials() {
    let (r, now) = half_open();
    assert_eq!(r.unavailable(&settings(), now), None);
    let ((r, _), a1) = r.admit(&settings(), ttl(), now);
    let ((r, _), a2) = r.admit(&settings(), ttl(), now);
    let ((r3, e3), a3) = r.admit(&settings(), ttl(), now);
    assert_eq!((a1, a2), (Admission::Trial, Admission::Trial));
    assert_eq!(a3, Admission::Refused { until: None });
    assert_eq!(
        (r3.clone(), e3),
        (r.clone(), None),
        "a refusal changes nothing"
    );
    assert_eq!(r.live_trials(now), 2);
    assert_eq!(r.unavailable(&settings(), now), Some(None));
    // A success releases its slot; the second success closes the breaker.
    let (r, e) = ok(&r, now);
    assert_eq!(
        (r.state, r.live_trials(now), e),
        (BreakerState::HalfOpen, 1, None)
    );
    assert_eq!(r.unavailable(&settings(), now), None);
    let (r, e) = ok(&r, now);
    assert_eq!(e, Some(BreakerEventKind::Closed));
    assert_eq!(r, BreakerRecord::default());
}

#[test]
fn a_half_open_failure_reopens_and_drops_every_trial() {
    let (r, now) = half_open();
    let ((r, _), _) = r.admit(&settings(), ttl(), now);
    let ((r, _), _) = r.admit(&settings(), ttl(), now);
    let (r, e) = fail(&r, now);
    assert_eq!(e, Some(BreakerEventKind::Opened));
    assert!(r.trials.is_empty());
    assert_eq!(r.unavailable(&settings(), now), Some(r.open_until));
}

#[test]
fn uncounted_outcomes_release_a_trial_without_counting() {
    let (r, now) = half_open();
    let ((r, _), _) = r.admit(&settings(), ttl(), now);
    let ((r, _), _) = r.admit(&settings(), ttl(), now);
    let obs = Observation::Failure {
        class: ErrorClass::ClientAbort,
        message: "client closed the connection",
    };
    let (r, e) = r.observe(&obs, &settings(), false, now);
    assert_eq!(e, None);
    assert_eq!(
        (r.state, r.live_trials(now), r.half_open_successes),
        (BreakerState::HalfOpen, 1, 0)
    );
}

#[test]
fn lost_trials_lapse_after_their_ttl() {
    let (r, now) = half_open();
    let ((r, _), _) = r.admit(&settings(), ttl(), now);
    let ((r, _), _) = r.admit(&settings(), ttl(), now);
    assert_eq!(
        r.unavailable(&settings(), now + ttl() - Duration::milliseconds(1)),
        Some(None)
    );
    let at = now + ttl();
    assert_eq!(
        r.unavailable(&settings(), at),
        None,
        "lapsed at exactly the ttl"
    );
    let ((r, _), adm) = r.admit(&settings(), ttl(), at);
    assert_eq!(adm, Admission::Trial);
    assert_eq!(
        r.trials,
        vec![at + ttl()],
        "lapsed trials are dropped when one is taken"
    );
}

#[test]
fn trial_slots_follow_the_success_threshold() {
    let s = BreakerSettings {
        half_open_success_threshold: 1,
        ..settings()
    };
    let (r, now) = half_open();
    let ((r, _), a1) = r.admit(&s, ttl(), now);
    let (_, a2) = r.admit(&s, ttl(), now);
    assert_eq!(
        (a1, a2),
        (Admission::Trial, Admission::Refused { until: None })
    );
}

#[test]
fn records_without_trials_still_parse() {
    let (r, _) = failed_n(5, t0());
    let json = serde_json::to_string(&r).unwrap_or_default();
    assert!(!json.contains("trials"), "{json}");
    let back: BreakerRecord = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(back, r);
}
