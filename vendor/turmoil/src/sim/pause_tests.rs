//! khaos patch: tests for [`Sim::pause`], [`Sim::resume`] and [`Sim::is_paused`].

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{interval, sleep, Instant, MissedTickBehavior};

use crate::net::{TcpListener, TcpStream, UdpSocket};
use crate::{elapsed, sim_elapsed, Builder, Result, Sim};

const PORT: u16 = 1234;

/// What the host software records, for the test to check.
type Log<T> = Rc<RefCell<Vec<T>>>;

/// The scenarios below must hold whatever the random latencies.
const SEEDS: std::ops::Range<u64> = 0..10;

fn sim<'a>(seed: u64) -> Sim<'a> {
    Builder::new().rng_seed(seed).build() // 1ms ticks, latency 0..=100ms
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn now() -> Duration {
    sim_elapsed().expect("inside the simulation")
}

/// Step the simulation until `sim.elapsed() == t`.
fn step_until(sim: &mut Sim, t: Duration) {
    while sim.elapsed() < t {
        sim.step().unwrap();
    }
    assert_eq!(sim.elapsed(), t);
}

/// A host that bumps `count` every 10ms.
fn counter(sim: &mut Sim, name: &str, count: Rc<Cell<u32>>) {
    sim.host(name, move || {
        let count = count.clone();
        async move {
            loop {
                sleep(ms(10)).await;
                count.set(count.get() + 1);
            }
        }
    });
}

/// (1) No timer fires during the pause; on resume the clock jumps at once, so
/// the missed ticks fire at the resume instant and not at intermediate ones.
#[test]
fn timers_do_not_fire_while_paused_and_fire_at_resume_instant() {
    SEEDS.for_each(timers_scenario);
}

fn timers_scenario(seed: u64) {
    let mut sim = sim(seed);

    // (time since the software started by the host's tokio clock, turmoil sim time)
    let delay: Log<(Duration, Duration)> = Default::default(); // MissedTickBehavior::Delay
    let burst: Log<(Duration, Duration)> = Default::default(); // MissedTickBehavior::Burst (default)

    sim.host("h", {
        let (delay, burst) = (delay.clone(), burst.clone());
        move || {
            let (delay, burst) = (delay.clone(), burst.clone());
            async move {
                let start = Instant::now();
                tokio::task::spawn_local(async move {
                    let mut iv = interval(ms(100));
                    loop {
                        iv.tick().await;
                        burst.borrow_mut().push((start.elapsed(), now()));
                    }
                });
                let mut iv = interval(ms(100));
                iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    iv.tick().await;
                    delay.borrow_mut().push((start.elapsed(), now()));
                }
            }
        }
    });

    let at = |v: &[u64]| v.iter().map(|&t| (ms(t), ms(t))).collect::<Vec<_>>();

    step_until(&mut sim, ms(250));
    assert_eq!(*delay.borrow(), at(&[0, 100, 200]));
    assert_eq!(*burst.borrow(), at(&[0, 100, 200]));

    sim.pause("h");
    assert!(sim.is_paused("h"));
    assert!(sim.is_host_running("h"));
    step_until(&mut sim, ms(1000));
    assert_eq!(delay.borrow().len(), 3, "no tick while paused");
    assert_eq!(burst.borrow().len(), 3, "no tick while paused");

    sim.resume("h");
    assert!(!sim.is_paused("h"));
    step_until(&mut sim, ms(1150));

    // Delay: one tick at the resume instant (host clock and sim time both
    // read 1000ms), then the period restarts from there.
    assert_eq!(*delay.borrow(), at(&[0, 100, 200, 1000, 1100]));
    // Burst: the 8 missed ticks (deadlines 300..=1000) are all delivered at
    // the resume instant; none is observed at an intermediate time.
    let mut expected = at(&[0, 100, 200]);
    expected.extend([ms(1000); 8].map(|t| (t, t)));
    expected.extend(at(&[1100]));
    assert_eq!(*burst.borrow(), expected);
}

/// (2) A TCP message sent to a paused host stays queued in the network and is
/// delivered (and acted upon) only after resume.
#[test]
fn tcp_message_to_paused_host_is_delivered_after_resume() -> Result {
    SEEDS.try_for_each(tcp_scenario)
}

fn tcp_scenario(seed: u64) -> Result {
    let mut sim = sim(seed);

    let accepted = Rc::new(Cell::new(false));
    let received: Log<(Duration, Vec<u8>)> = Default::default();
    let sent = Rc::new(Cell::new(None));
    let echoed = Rc::new(Cell::new(None));

    sim.host("server", {
        let (accepted, received) = (accepted.clone(), received.clone());
        move || {
            let (accepted, received) = (accepted.clone(), received.clone());
            async move {
                let listener =
                    TcpListener::bind((IpAddr::from(Ipv4Addr::UNSPECIFIED), PORT)).await?;
                let (mut s, _) = listener.accept().await?;
                accepted.set(true);
                let mut buf = [0; 4];
                s.read_exact(&mut buf).await?;
                received.borrow_mut().push((now(), buf.to_vec()));
                s.write_all(&buf).await?;
                std::future::pending().await
            }
        }
    });

    sim.client("client", {
        let (sent, echoed) = (sent.clone(), echoed.clone());
        async move {
            let mut s = TcpStream::connect(("server", PORT)).await?;
            sleep(ms(300)).await;
            s.write_all(b"ping").await?;
            sent.set(Some(now()));
            let mut buf = [0; 4];
            s.read_exact(&mut buf).await?;
            assert_eq!(&buf, b"ping");
            echoed.set(Some(now()));
            Ok(())
        }
    });

    step_until(&mut sim, ms(200));
    assert!(accepted.get(), "connection established before the pause");
    sim.pause("server");

    step_until(&mut sim, ms(1000));
    assert!(
        sent.get().unwrap() < ms(1000),
        "client sent during the pause"
    );
    assert!(
        received.borrow().is_empty(),
        "nothing delivered while paused"
    );

    sim.resume("server");
    step_until(&mut sim, ms(1001));
    assert_eq!(*received.borrow(), vec![(ms(1000), b"ping".to_vec())]);

    sim.run()?;
    assert!(echoed.get().unwrap() >= ms(1000));
    Ok(())
}

/// (3) Other hosts, and the network between them, keep running during a pause.
#[test]
fn other_hosts_keep_running_while_one_is_paused() -> Result {
    SEEDS.try_for_each(others_scenario)
}

fn others_scenario(seed: u64) -> Result {
    let mut sim = sim(seed);

    let (paused, other) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    counter(&mut sim, "paused", paused.clone());
    counter(&mut sim, "other", other.clone());
    sim.host("echo", || async {
        let sock = UdpSocket::bind((IpAddr::from(Ipv4Addr::UNSPECIFIED), PORT)).await?;
        let mut buf = [0; 16];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await?;
            sock.send_to(&buf[..n], from).await?;
        }
    });

    step_until(&mut sim, ms(105));
    assert_eq!((paused.get(), other.get()), (10, 10));
    sim.pause("paused");

    let round_trips = Rc::new(Cell::new(0));
    sim.client("client", {
        let round_trips = round_trips.clone();
        async move {
            let sock = UdpSocket::bind((IpAddr::from(Ipv4Addr::UNSPECIFIED), PORT)).await?;
            for _ in 0..5 {
                sock.send_to(b"hi", ("echo", PORT)).await?;
                let mut buf = [0; 16];
                sock.recv_from(&mut buf).await?;
                round_trips.set(round_trips.get() + 1);
            }
            Ok(())
        }
    });
    sim.run()?; // completes while "paused" stays paused
    assert_eq!(round_trips.get(), 5);

    let t = sim.elapsed().max(ms(605));
    step_until(&mut sim, t);
    assert!(sim.is_paused("paused"));
    assert_eq!(paused.get(), 10, "the paused host did not run");
    assert_eq!(other.get(), 60, "the other host kept running");

    sim.resume("paused");
    step_until(&mut sim, ms(705));
    // One wake-up at the resume instant (its sleep was due at 110ms), then
    // every 10ms again: 615, 625, ..., 695.
    assert_eq!(paused.get(), 10 + 1 + 9);
    assert_eq!(other.get(), 70);
    Ok(())
}

/// A small run with random latencies, random node order and UDP chatter
/// between three hosts, two of which are paused for a while. Returns the trace.
fn chatter(seed: u64) -> Vec<String> {
    let mut sim = Builder::new().rng_seed(seed).enable_random_order().build();
    let trace: Log<String> = Default::default();

    let names = ["a", "b", "c"];
    for (i, name) in names.into_iter().enumerate() {
        let trace = trace.clone();
        sim.host(name, move || {
            let trace = trace.clone();
            async move {
                let sock =
                    Rc::new(UdpSocket::bind((IpAddr::from(Ipv4Addr::UNSPECIFIED), PORT)).await?);
                tokio::task::spawn_local({
                    let (sock, trace) = (sock.clone(), trace.clone());
                    async move {
                        let mut buf = [0; 32];
                        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                            trace.borrow_mut().push(format!(
                                "{:?} {name} (host {:?}) recv {msg} from {from}",
                                now(),
                                elapsed()
                            ));
                        }
                    }
                });
                let mut iv = interval(ms(7 + 4 * i as u64));
                for n in 0.. {
                    iv.tick().await;
                    let to = names[(i + 1 + n % 2) % 3];
                    let msg = format!("{name}{n}");
                    sock.send_to(msg.as_bytes(), (to, PORT)).await?;
                    trace
                        .borrow_mut()
                        .push(format!("{:?} {name} send {msg} to {to}", now()));
                }
                Ok(())
            }
        });
    }

    step_until(&mut sim, ms(200));
    sim.pause("b");
    step_until(&mut sim, ms(500));
    sim.pause("c");
    step_until(&mut sim, ms(700));
    sim.resume("b");
    step_until(&mut sim, ms(900));
    sim.resume("c");
    step_until(&mut sim, ms(1500));

    let trace = trace.borrow().clone();
    trace
}

/// (4) Same seed, same trace, with pauses in play.
#[test]
fn pause_is_deterministic() {
    let first = chatter(42);
    assert!(first.len() > 300, "{}", first.len());
    assert_eq!(first, chatter(42));
    assert_ne!(first, chatter(7), "the trace does depend on the seed");

    // b is silent while paused, then catches up at the resume instant.
    let b_sends = |t: &str| {
        first
            .iter()
            .filter(|l| l.starts_with(t) && l.contains(" b send "))
            .count()
    };
    assert!((201..700).all(|t| b_sends(&format!("{:?} ", ms(t))) == 0));
    assert!(b_sends("700ms ") > 1, "missed ticks burst at 700ms");
}

/// (5) Crash and bounce clear the pause; the restarted software then runs
/// normally.
#[test]
fn crash_and_bounce_clear_the_pause() {
    SEEDS.for_each(crash_bounce_scenario);
}

fn crash_bounce_scenario(seed: u64) {
    let mut sim = sim(seed);

    let starts: Log<Duration> = Default::default();
    let count = Rc::new(Cell::new(0));
    sim.host("h", {
        let (starts, count) = (starts.clone(), count.clone());
        move || {
            let (starts, count) = (starts.clone(), count.clone());
            async move {
                starts.borrow_mut().push(now());
                loop {
                    sleep(ms(10)).await;
                    count.set(count.get() + 1);
                }
            }
        }
    });

    step_until(&mut sim, ms(105));
    sim.pause("h");
    sim.crash("h");
    assert!(!sim.is_paused("h"));
    assert!(!sim.is_host_running("h"));
    step_until(&mut sim, ms(200));
    sim.resume("h"); // no-op: no longer paused
    sim.bounce("h");
    assert!(sim.is_host_running("h") && !sim.is_paused("h"));
    step_until(&mut sim, ms(305));

    sim.pause("h");
    step_until(&mut sim, ms(400));
    sim.bounce("h");
    assert!(sim.is_host_running("h") && !sim.is_paused("h"));
    step_until(&mut sim, ms(505));

    // Resumed, then crashed before its next step, then restarted.
    sim.pause("h");
    step_until(&mut sim, ms(600));
    sim.resume("h");
    sim.crash("h");
    sim.bounce("h");
    assert!(sim.is_host_running("h") && !sim.is_paused("h"));
    step_until(&mut sim, ms(705));

    assert_eq!(*starts.borrow(), vec![ms(0), ms(200), ms(400), ms(600)]);
    // 10 wake-ups in each 100ms the software ran: from 0, 200, 400 and 600.
    assert_eq!(count.get(), 40);
}

#[test]
#[should_panic(expected = "cannot pause client: only a host can be paused")]
fn pause_client_panics() {
    let mut sim = sim(0);
    sim.client("client", std::future::pending());
    sim.pause("client");
}

#[test]
#[should_panic(expected = "cannot pause h: its software is not running")]
fn pause_crashed_host_panics() {
    let mut sim = sim(0);
    sim.host("h", std::future::pending);
    sim.crash("h");
    sim.pause("h");
}

#[test]
#[should_panic(expected = "cannot pause h: it is already paused")]
fn pause_twice_panics() {
    let mut sim = sim(0);
    sim.host("h", std::future::pending);
    sim.pause("h");
    sim.pause("h");
}

#[test]
#[should_panic(expected = "no such host")]
fn pause_unknown_host_panics() {
    let mut sim = sim(0);
    sim.pause("nope");
}
