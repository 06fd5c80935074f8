//! [`FaultProxy`]: a TCP proxy between an agent and a hub that the test controls. It listens
//! on a free loopback port and forwards each connection to the upstream address, according to
//! the current [`Fault`]:
//!
//! - `Pass`: forward both ways;
//! - `Drop`: close every open connection now, and close new ones as soon as they are accepted
//!   (the peer sees a reset or EOF, as when a NAT box forgets the flow);
//! - `Blackhole`: accept but forward nothing (bytes already read are held, not lost, like TCP
//!   retransmission would deliver them once the path is back); connections stay open;
//! - `Delay(ms)`: forward each chunk after `ms` milliseconds (order kept);
//! - `Flap(period)`: `Pass` for one period, `Drop` for the next, and so on.
//!
//! The proxy runs on its own tokio runtime (two worker threads), so tests stay synchronous.
//! It holds at most [`MAX_CONNS`] connections at once (more are closed on accept), and
//! everything stops when it is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Connections the proxy holds at once.
pub const MAX_CONNS: usize = 256;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Drop,
    Blackhole,
    /// Milliseconds added to each chunk.
    Delay(u64),
    /// Up for one period, down (as `Drop`) for the next.
    Flap(Duration),
}

/// What a connection does right now (`Flap` resolved to `Pass` or `Drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effective {
    Pass,
    Drop,
    Blackhole,
    Delay(u64),
}

/// Counters a test can read.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted (whether forwarded or not).
    pub accepted: AtomicU64,
    /// Connections closed by a `Drop` (open ones cut, new ones refused).
    pub dropped: AtomicU64,
    /// Bytes forwarded, both directions.
    pub bytes: AtomicU64,
}

/// The proxy. Dropping it stops it and closes every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    control: Arc<Control>,
    stats: Arc<Stats>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// A proxy on a free 127.0.0.1 port forwarding to `upstream`, passing traffic.
    pub fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (eff_tx, eff_rx) = watch::channel(Effective::Pass);
        let control = Arc::new(Control {
            current: std::sync::Mutex::new((Fault::Pass, 0)),
            eff: eff_tx,
        });
        let stats = Arc::new(Stats::default());
        runtime.spawn(accept_loop(listener, upstream, eff_rx, stats.clone()));
        Ok(FaultProxy {
            addr,
            upstream,
            control,
            stats,
            runtime: Some(runtime),
        })
    }

    /// Where clients connect (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where traffic goes.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Change what the proxy does; applies to open connections at once.
    pub fn set(&self, fault: Fault) {
        let generation = {
            let mut cur = self.control.lock();
            cur.0 = fault;
            cur.1 += 1;
            match fault {
                Fault::Pass => self.control.eff.send_replace(Effective::Pass),
                Fault::Drop => self.control.eff.send_replace(Effective::Drop),
                Fault::Blackhole => self.control.eff.send_replace(Effective::Blackhole),
                Fault::Delay(ms) => self.control.eff.send_replace(Effective::Delay(ms)),
                Fault::Flap(_) => self.control.eff.send_replace(Effective::Pass),
            };
            cur.1
        };
        if let (Fault::Flap(period), Some(rt)) = (fault, self.runtime.as_ref()) {
            rt.spawn(flap(self.control.clone(), period, generation));
        }
    }

    /// The fault last set.
    pub fn fault(&self) -> Fault {
        self.control.lock().0
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Ordering::Relaxed)
    }

    /// Connections cut or refused by `Drop` (or a flap's down half) so far.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Aborts every task: the listener and all connections close.
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// The fault the test set (with a generation number, bumped on every `set`) and what
/// connections do now. `set` and the flap clock change both under the lock, so a flap tick
/// never overrides a later `set`.
struct Control {
    current: std::sync::Mutex<(Fault, u64)>,
    eff: watch::Sender<Effective>,
}

impl Control {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Fault, u64)> {
        // A panic while holding this lock leaves a valid (Fault, u64): keep going.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Drive a `Flap(period)` set as `generation`: toggle every period until another `set`.
async fn flap(control: Arc<Control>, period: Duration, generation: u64) {
    let period = period.max(Duration::from_millis(10));
    let mut up = true;
    loop {
        tokio::time::sleep(period).await;
        up = !up;
        let cur = control.lock();
        if cur.1 != generation {
            return;
        }
        control
            .eff
            .send_replace(if up { Effective::Pass } else { Effective::Drop });
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    eff: watch::Receiver<Effective>,
    stats: Arc<Stats>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNS));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // over the bound: closed on drop
        };
        let eff = eff.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            connection(client, upstream, eff, &stats).await;
            drop(permit);
        });
    }
}

/// Wait until the effective fault lets traffic through; false when it says to drop (or the
/// proxy is going away).
async fn wait_open(eff: &mut watch::Receiver<Effective>) -> bool {
    loop {
        let e = *eff.borrow_and_update();
        match e {
            Effective::Pass | Effective::Delay(_) => return true,
            Effective::Drop => return false,
            Effective::Blackhole => {
                if eff.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut eff: watch::Receiver<Effective>,
    stats: &Stats,
) {
    // A blackhole accepts and holds: the upstream connection is made only once traffic flows.
    if !wait_open(&mut eff).await {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, eff.clone(), stats);
    let down = pump(sr, cw, eff.clone(), stats);
    let cut = async {
        loop {
            if *eff.borrow_and_update() == Effective::Drop {
                return;
            }
            if eff.changed().await.is_err() {
                return;
            }
        }
    };
    // The pumps obey the fault too: on a Drop they may end before `cut` is polled, so the
    // connection is counted by the state it ended in, not by which branch won.
    let dropped = tokio::select! {
        _ = async { tokio::join!(up, down) } => *eff.borrow() == Effective::Drop,
        _ = cut => true,
    };
    if dropped {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
    // Both halves drop here: the sockets close.
}

/// Copy `from` to `to` chunk by chunk, obeying the fault for each chunk.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut eff: watch::Receiver<Effective>,
    stats: &Stats,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Do not even read while blackholed: the sender's window fills as on a dead path.
        if !wait_open(&mut eff).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        // Bytes read just before a blackhole are held until the path is back.
        if !wait_open(&mut eff).await {
            return;
        }
        let e = *eff.borrow();
        if let Effective::Delay(ms) = e {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        // Counted before the write: once the peer can see these bytes, the count includes them
        // (counting after let a fast reader observe an echo before its bytes were counted).
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener as StdListener, TcpStream as StdStream};
    use std::time::Instant;

    /// An echo server on a free port (one thread per connection); its address.
    fn echo() -> SocketAddr {
        let l = StdListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if c.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    fn client(p: &FaultProxy) -> StdStream {
        let c = StdStream::connect(p.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c
    }

    /// Send `msg` and read the echo: Ok(bytes) or the read error / EOF.
    fn round_trip(c: &mut StdStream, msg: &[u8]) -> Result<Vec<u8>, String> {
        c.write_all(msg).map_err(|e| e.to_string())?;
        let mut got = vec![0u8; msg.len()];
        let mut n = 0;
        while n < msg.len() {
            match c.read(&mut got[n..]) {
                Ok(0) => return Err("EOF".into()),
                Ok(k) => n += k,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(got)
    }

    /// Whether the connection is closed: a read returns EOF or an error within 5 s.
    fn closed(c: &mut StdStream) -> bool {
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    #[test]
    fn pass_forwards_both_ways() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut c = client(&p);
        assert_eq!(round_trip(&mut c, b"hello").unwrap(), b"hello");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(round_trip(&mut c, &big).unwrap(), big);
        assert_eq!(p.accepted(), 1);
        assert!(p.stats().bytes.load(Ordering::Relaxed) >= 2 * 200_005);
    }

    #[test]
    fn drop_cuts_open_connections_and_refuses_new_ones_until_pass() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut c = client(&p);
        assert_eq!(round_trip(&mut c, b"a").unwrap(), b"a");
        p.set(Fault::Drop);
        assert!(closed(&mut c), "open connection survived Drop");
        let mut c2 = client(&p);
        let _ = c2.write_all(b"x");
        assert!(closed(&mut c2), "new connection was served during Drop");
        assert!(p.dropped() >= 2, "dropped = {}", p.dropped());
        p.set(Fault::Pass);
        let mut c3 = client(&p);
        assert_eq!(round_trip(&mut c3, b"back").unwrap(), b"back");
    }

    #[test]
    fn blackhole_holds_bytes_and_delivers_them_when_the_path_returns() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut c = client(&p);
        assert_eq!(round_trip(&mut c, b"1").unwrap(), b"1");
        p.set(Fault::Blackhole);
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        c.write_all(b"held").unwrap();
        let mut b = [0u8; 4];
        let r = c.read(&mut b);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut),
            "a blackhole let something through (or closed): {r:?}"
        );
        // A connection made during the blackhole is accepted, and held too.
        let mut c2 = client(&p);
        c2.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        c2.write_all(b"new").unwrap();
        assert!(
            c2.read(&mut b).is_err(),
            "blackholed new connection answered"
        );
        p.set(Fault::Pass);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = [0u8; 4];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"held");
        c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got2 = [0u8; 3];
        c2.read_exact(&mut got2).unwrap();
        assert_eq!(&got2, b"new");
    }

    #[test]
    fn delay_holds_each_chunk_and_keeps_order() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut c = client(&p);
        p.set(Fault::Delay(300));
        let t = Instant::now();
        assert_eq!(round_trip(&mut c, b"slow").unwrap(), b"slow");
        // Once each way.
        assert!(
            t.elapsed() >= Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
        for i in 0..5u8 {
            c.write_all(&[i]).unwrap();
        }
        let mut got = [0u8; 5];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        p.set(Fault::Pass);
        assert_eq!(round_trip(&mut c, b"fast").unwrap(), b"fast");
    }

    #[test]
    fn flap_alternates_up_and_down() {
        let p = FaultProxy::start(echo()).unwrap();
        p.set(Fault::Flap(Duration::from_millis(400)));
        let (mut ups, mut downs) = (0, 0);
        let end = Instant::now() + Duration::from_secs(4);
        while Instant::now() < end && (ups < 2 || downs < 2) {
            let mut c = client(&p);
            c.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            match round_trip(&mut c, b"?") {
                Ok(v) if v == b"?" => ups += 1,
                _ => downs += 1,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(ups >= 2 && downs >= 2, "ups {ups}, downs {downs}");
        p.set(Fault::Pass);
        let mut c = client(&p);
        assert_eq!(round_trip(&mut c, b"steady").unwrap(), b"steady");
    }

    #[test]
    fn dropping_the_proxy_closes_its_port_and_connections() {
        let p = FaultProxy::start(echo()).unwrap();
        let addr = p.addr();
        let mut c = client(&p);
        assert_eq!(round_trip(&mut c, b"x").unwrap(), b"x");
        drop(p);
        assert!(closed(&mut c));
        assert!(StdStream::connect(addr).is_err(), "port still open");
    }

    #[test]
    fn connections_over_the_bound_are_closed() {
        let p = FaultProxy::start(echo()).unwrap();
        let mut held: Vec<StdStream> = (0..MAX_CONNS).map(|_| client(&p)).collect();
        for c in held.iter_mut().take(3) {
            assert_eq!(round_trip(c, b"k").unwrap(), b"k");
        }
        // Every slot is taken once the proxy has accepted them all.
        let deadline = Instant::now() + Duration::from_secs(5);
        while p.accepted() < MAX_CONNS as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut extra = client(&p);
        let _ = extra.write_all(b"x");
        assert!(closed(&mut extra), "connection over the bound was served");
        drop(held.pop());
        let mut again = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while again.is_none() && Instant::now() < deadline {
            let mut c = client(&p);
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            if round_trip(&mut c, b"y").is_ok() {
                again = Some(c);
            }
        }
        assert!(again.is_some(), "a freed slot was not reused");
    }
}
