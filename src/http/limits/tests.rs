use std::net::IpAddr;

use super::*;

fn handle(a: Admission) -> ConnHandle {
    match a {
        Admission::Admitted(h) | Admission::MadeRoom(h) => h,
        Admission::Full | Admission::AddressFull => panic!("refused"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn at_the_cap_the_idlest_connection_makes_room_and_busy_ones_stay() {
    let conns = Connections::new(2, 10);
    let a = handle(conns.admit(ip("192.0.2.1"), true));
    std::thread::sleep(Duration::from_millis(5));
    let b = handle(conns.admit(ip("192.0.2.2"), true));
    let _busy_b = b.conn.begin();
    let c = match conns.admit(ip("192.0.2.3"), true) {
        Admission::MadeRoom(c) => c,
        _ => panic!("a is idle: it makes room"),
    };
    assert!(a.conn.close.is_cancelled());
    assert!(!b.conn.close.is_cancelled());
    assert_eq!(conns.open(), 2);
    let _busy_c = c.conn.begin();
    assert!(
        matches!(conns.admit(ip("192.0.2.4"), true), Admission::Full),
        "every connection is busy"
    );
    drop(c);
    assert_eq!(conns.open(), 1);
}

#[test]
fn one_address_holds_at_most_its_share_and_a_v6_64_is_one_address() {
    let conns = Connections::new(100, 2);
    let a = handle(conns.admit(ip("2001:db8:1:2::1"), true));
    let _busy_a = a.conn.begin();
    let b = handle(conns.admit(ip("2001:db8:1:2::ffff"), true));
    let idle_c = handle(conns.admit(ip("192.0.2.9"), true));
    let _busy_b = b.conn.begin();
    assert!(matches!(
        conns.admit(ip("2001:db8:1:2:3::9"), true),
        Admission::AddressFull
    ));
    assert!(
        !idle_c.conn.close.is_cancelled(),
        "another address's idle one stays"
    );
    assert!(matches!(
        conns.admit(ip("2001:db8:1:3::1"), true),
        Admission::Admitted(_)
    ));
    let _proxy = handle(conns.admit(ip("2001:db8:1:2::7"), false));
    drop(b);
    let idle_d = handle(conns.admit(ip("2001:db8:1:2::2"), true));
    assert!(matches!(
        conns.admit(ip("2001:db8:1:2::3"), true),
        Admission::MadeRoom(_)
    ));
    assert!(
        idle_d.conn.close.is_cancelled(),
        "its own idle one made room"
    );
    assert_eq!(
        Source::of(ip("::ffff:192.0.2.1")),
        Source::of(ip("192.0.2.1"))
    );
}

#[tokio::test]
async fn an_answer_the_client_does_not_take_expires_but_a_slow_handler_does_not() {
    let conns = Connections::new(4, 4);
    let h = handle(conns.admit(ip("192.0.2.1"), true));
    let (idle, write) = (Duration::from_millis(100), Duration::from_millis(200));
    let busy = h.conn.begin();
    let slow_handler =
        tokio::time::timeout(Duration::from_millis(600), h.conn.expired(idle, write));
    assert!(slow_handler.await.is_err(), "a handler at work is not cut");
    let writing = h.conn.writing();
    assert_eq!(h.conn.expired(idle, write).await, Expiry::Stalled);
    drop((writing, busy));
    assert_eq!(h.conn.expired(idle, write).await, Expiry::Idle);
}

#[test]
fn a_request_keeps_a_connection_busy_until_its_answer_is_sent() {
    let conns = Connections::new(4, 4);
    let h = handle(conns.admit(ip("192.0.2.1"), true));
    assert!(h.conn.idle_for().is_some());
    let guard = h.conn.begin();
    assert_eq!(h.conn.idle_for(), None);
    drop(guard);
    assert!(h.conn.idle_for().unwrap() < Duration::from_secs(1));
}

#[test]
fn the_body_budget_is_shared_and_given_back() {
    let budget = BodyBudget::new(10 * 1024);
    let mut first = budget.draw();
    assert!(first.grow(6 * 1024));
    let mut second = budget.draw();
    assert!(!second.grow(6 * 1024));
    // A byte at a time costs the bytes, not a KiB each.
    for _ in 0..1024 {
        assert!(second.grow(1));
    }
    assert_eq!(budget.available(), 3 * 1024);
    drop(first);
    drop(second);
    assert_eq!(budget.available(), 10 * 1024);
}
