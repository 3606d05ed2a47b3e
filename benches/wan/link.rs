//! A simulated wide-area link between two network namespaces, in user space, for kernels
//! without `tc netem`.
//!
//! Each end of a link is a TUN device inside its namespace, with a point-to-point address whose
//! peer is the other end. What the kernel of one namespace sends to the peer comes out of that
//! end's TUN device; a forwarder thread per direction reads it, applies the direction's
//! impairment and writes it into the other end's device, where the other kernel receives it:
//!
//! ```text
//!   ns A: tcp ─► tunA ─► [loss ► rate queue ► one-way delay] ─► tunB ─► tcp :ns B
//!   ns A: tcp ◄─ tunA ◄─ [loss ◄ rate queue ◄ one-way delay] ◄─ tunB ◄─ tcp :ns B
//! ```
//!
//! The model per direction, like netem with a rate: a packet is lost at random with the given
//! probability; otherwise it waits its turn on the wire (serialisation at `rate`, FIFO), then
//! arrives `delay` after it left. The queue before the wire holds at most `QUEUE_PACKETS` full
//! packets' worth of waiting time (netem's default limit); a packet that would wait longer is
//! tail-dropped, which is what a real bottleneck's buffer does. Packets in flight (the delay)
//! are not counted against that queue. Randomness is seeded, so a run is repeatable in what it
//! drops, though not in the timing of the kernels around it.

use std::collections::VecDeque;
use std::fs::File;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sched::{CloneFlags, setns};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tun_rs::{DeviceBuilder, SyncDevice};

const MTU: u16 = 1500;
/// The bottleneck buffer, in full-size packets (netem's default `limit`).
const QUEUE_PACKETS: u64 = 1000;

/// What one direction of a link does to packets.
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    /// One-way propagation delay (half the round-trip time the link adds).
    pub delay: Duration,
    /// Bits per second on the wire.
    pub rate_bps: u64,
    /// Probability that a packet is lost, 0.0..=1.0.
    pub loss: f64,
}

impl Impairment {
    /// Both directions of a link with `rtt`, `mbit` per second each way and `loss` each way.
    pub fn symmetric(rtt: Duration, mbit: u64, loss: f64) -> Impairment {
        Impairment {
            delay: rtt / 2,
            rate_bps: mbit * 1_000_000,
            loss,
        }
    }

    fn wire_time(&self, bytes: usize) -> Duration {
        Duration::from_nanos((bytes as u64 * 8).saturating_mul(1_000_000_000) / self.rate_bps)
    }
}

/// One end of a link: a TUN device named `dev` in namespace `netns`, addressed `addr`.
pub struct End<'a> {
    pub netns: &'a str,
    pub dev: &'a str,
    pub addr: Ipv4Addr,
}

/// Packets forwarded and dropped, per direction (`[a_to_b, b_to_a]`).
#[derive(Default)]
pub struct Counters {
    pub forwarded: [AtomicU64; 2],
    pub lost: [AtomicU64; 2],
    pub tail_dropped: [AtomicU64; 2],
}

/// A running link. Its threads live as long as the process; the bench builds its network once
/// and changes impairments between scenarios with [`Link::set`].
pub struct Link {
    pub counters: Arc<Counters>,
    impairment: Arc<Mutex<Impairment>>,
}

impl Link {
    /// Creates the two TUN devices, addresses them as each other's peer and starts forwarding.
    pub fn start(a: End, b: End, impairment: Impairment, seed: u64) -> anyhow::Result<Link> {
        let dev_a = Arc::new(tun_in(&a, b.addr)?);
        let dev_b = Arc::new(tun_in(&b, a.addr)?);
        let counters = Arc::new(Counters::default());
        let impairment = Arc::new(Mutex::new(impairment));
        for (dir, from, to) in [(0, &dev_a, &dev_b), (1, &dev_b, &dev_a)] {
            forward(
                from.clone(),
                to.clone(),
                impairment.clone(),
                seed.wrapping_mul(31).wrapping_add(dir as u64),
                counters.clone(),
                dir,
            );
        }
        Ok(Link {
            counters,
            impairment,
        })
    }

    /// Changes both directions' impairment from the next packet on, and zeroes the counters.
    pub fn set(&self, impairment: Impairment) {
        *self.impairment.lock().unwrap() = impairment;
        for c in [
            &self.counters.forwarded,
            &self.counters.lost,
            &self.counters.tail_dropped,
        ] {
            c.iter().for_each(|n| n.store(0, Ordering::Relaxed));
        }
    }

    pub fn summary(&self) -> String {
        let c = &self.counters;
        let get = |a: &[AtomicU64; 2], i: usize| a[i].load(Ordering::Relaxed);
        format!(
            "forwarded {}/{} packets, lost {}/{}, tail-dropped {}/{} (a→b / b→a)",
            get(&c.forwarded, 0),
            get(&c.forwarded, 1),
            get(&c.lost, 0),
            get(&c.lost, 1),
            get(&c.tail_dropped, 0),
            get(&c.tail_dropped, 1),
        )
    }
}

/// Moves the calling thread into `netns` (a name under /run/netns). Sockets and devices the
/// thread creates afterwards live there; other threads are not affected.
pub fn enter_netns(netns: &str) -> anyhow::Result<()> {
    let file = File::open(format!("/run/netns/{netns}"))
        .with_context(|| format!("opening network namespace {netns}"))?;
    setns(file, CloneFlags::CLONE_NEWNET).with_context(|| format!("entering {netns}"))?;
    Ok(())
}

/// Runs `ip ARGS...` and fails with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn tun_in(end: &End, peer: Ipv4Addr) -> anyhow::Result<SyncDevice> {
    // A TUN device belongs to the namespace of the thread that creates it, so create it from a
    // short-lived thread that entered the namespace.
    let (netns, dev) = (end.netns.to_string(), end.dev.to_string());
    let device = std::thread::spawn(move || -> anyhow::Result<SyncDevice> {
        enter_netns(&netns)?;
        DeviceBuilder::new()
            .name(&dev)
            .mtu(MTU)
            .packet_information(false)
            .build_sync()
            .with_context(|| format!("creating TUN device {dev} in {netns}"))
    })
    .join()
    .expect("TUN thread panicked")?;
    let (addr, peer) = (end.addr.to_string(), peer.to_string());
    ip(&[
        "-n", end.netns, "addr", "add", &addr, "peer", &peer, "dev", end.dev,
    ])?;
    ip(&["-n", end.netns, "link", "set", end.dev, "up"])?;
    Ok(device)
}

/// A packet and when it reaches the far end.
struct InFlight {
    arrives: Instant,
    packet: Vec<u8>,
}

#[derive(Default)]
struct Wire {
    packets: Mutex<VecDeque<InFlight>>,
    ready: Condvar,
}

/// Starts the two threads of one direction: the reader decides each packet's fate and arrival
/// time; the writer delivers packets when they arrive. Arrival times never decrease (FIFO wire,
/// fixed delay), so the writer only ever waits for the head of the queue.
fn forward(
    from: Arc<SyncDevice>,
    to: Arc<SyncDevice>,
    impairment: Arc<Mutex<Impairment>>,
    seed: u64,
    counters: Arc<Counters>,
    dir: usize,
) {
    let wire = Arc::new(Wire::default());
    let reader_wire = wire.clone();
    let reader_counters = counters.clone();
    std::thread::spawn(move || {
        let mut rng = SmallRng::seed_from_u64(seed);
        // When the wire is next free.
        let mut free_at = Instant::now();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = from.recv(&mut buf) {
            let imp = *impairment.lock().unwrap();
            if rng.random::<f64>() < imp.loss {
                reader_counters.lost[dir].fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let now = Instant::now();
            let start = free_at.max(now);
            if start - now > imp.wire_time(MTU as usize) * QUEUE_PACKETS as u32 {
                reader_counters.tail_dropped[dir].fetch_add(1, Ordering::Relaxed);
                continue;
            }
            free_at = start + imp.wire_time(n);
            let packet = InFlight {
                arrives: free_at + imp.delay,
                packet: buf[..n].to_vec(),
            };
            reader_wire.packets.lock().unwrap().push_back(packet);
            reader_wire.ready.notify_one();
        }
    });
    std::thread::spawn(move || {
        loop {
            let mut queue = wire.packets.lock().unwrap();
            let Some(head) = queue.front() else {
                drop(wire.ready.wait(queue).unwrap());
                continue;
            };
            let now = Instant::now();
            if head.arrives > now {
                let wait = head.arrives - now;
                drop(wire.ready.wait_timeout(queue, wait).unwrap());
                continue;
            }
            // Deliver everything due, outside the lock.
            let mut due = Vec::new();
            while queue.front().is_some_and(|p| p.arrives <= now) {
                due.push(queue.pop_front().unwrap());
            }
            drop(queue);
            for p in due {
                if to.send(&p.packet).is_err() {
                    return;
                }
                counters.forwarded[dir].fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}
