//! Unit tests of the follower's reading of the feed.

use super::*;
use outpost_store::engine::Change;

fn event(seq: u64) -> String {
    Line::Event(Event {
        seq,
        time: SystemTime::UNIX_EPOCH,
        change: Change::put("b", "k", "e"),
    })
    .to_text(SystemTime::UNIX_EPOCH)
}

fn hello(id: &str, last: u64) -> String {
    Line::Hello {
        store_id: id.into(),
        last,
    }
    .to_text(SystemTime::now())
}

fn read(p: &mut Position, text: &str) -> Result<Step, String> {
    p.read(text.trim_end())
}

#[test]
fn a_follower_applies_each_event_once_in_order() {
    let mut p = Position::default();
    assert!(read(&mut p, &event(1)).is_err(), "an event before hello");
    assert_eq!(
        read(&mut p, &hello("s1", 4)),
        Ok(Step::Resync),
        "first contact"
    );
    assert_eq!(p.path(), "/_outpost/changes?after=4");
    assert_eq!(read(&mut p, &event(3)), Ok(Step::Nothing), "seen");
    assert!(matches!(read(&mut p, &event(5)), Ok(Step::Apply(e)) if e.seq == 5));
    // Reconnected to the same store: nothing missed.
    assert_eq!(read(&mut p, &hello("s1", 9)), Ok(Step::Nothing));
    assert_eq!(read(&mut p, &event(7)), Ok(Step::Resync), "6 never came");
    assert_eq!(p.last, Some(7));
    // Other data behind the same address.
    assert_eq!(read(&mut p, &hello("s2", 2)), Ok(Step::Resync));
    assert_eq!(p.last, Some(2));
    let keepalive = Line::KeepAlive { last: 1 }.to_text(SystemTime::now());
    assert_eq!(
        read(&mut p, &keepalive),
        Ok(Step::Resync),
        "numbers went back"
    );
}

#[test]
fn a_saved_place_resumes_without_a_resync_and_knows_when_it_caught_up() {
    let saved = |last| {
        Position::saved(Some(FeedPosition {
            url: "u".into(),
            store_id: "s1".into(),
            last,
            revalidate_before_ms: 0,
        }))
    };
    let mut p = saved(4);
    assert_eq!(p.path(), "/_outpost/changes?after=4");
    assert!(!p.caught_up(), "not before the store said where it is");
    assert_eq!(read(&mut p, &hello("s1", 6)), Ok(Step::Nothing));
    assert!(!p.caught_up());
    assert!(matches!(read(&mut p, &event(5)), Ok(Step::Apply(_))));
    assert!(!p.caught_up());
    assert!(matches!(read(&mut p, &event(6)), Ok(Step::Apply(_))));
    assert!(p.caught_up());
    assert_eq!(p.to_save("u").map(|s| s.last), Some(6));
    // Nothing happened meanwhile: caught up at hello.
    let mut p = saved(6);
    assert_eq!(read(&mut p, &hello("s1", 6)), Ok(Step::Nothing));
    assert!(p.caught_up());
    // Other data, or the same name with numbers that went back: a resync.
    assert_eq!(read(&mut saved(6), &hello("s2", 9)), Ok(Step::Resync));
    let mut p = saved(6);
    assert_eq!(read(&mut p, &hello("s1", 3)), Ok(Step::Resync));
    assert_eq!((p.last, p.caught_up()), (Some(3), true));
}

#[test]
fn garbage_is_never_half_applied() {
    let mut p = Position::default();
    read(&mut p, &hello("s", 0)).unwrap();
    let whole = event(1);
    for bad in [
        &whole[..whole.len() / 2],
        "not json",
        "{\"seq\":1,\"kind\":\"put\"}",
        "{\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"kind\":\"launch\"}",
    ] {
        assert!(read(&mut p, bad).is_err(), "{bad}");
        assert_eq!(p.last, Some(0), "nothing of {bad:?} taken");
    }
    assert!(matches!(read(&mut p, &whole), Ok(Step::Apply(_))));
}
