//! Echo load: N connections, each sending `echo(text)` and reading the reply.
//! Closed loop (one request in flight per connection: the server's capacity)
//! or fixed rate (requests on a schedule, latency counted from the scheduled
//! send time, so a server that falls behind cannot hide its queue). The chat
//! servers get the chat's own round trip: `say` in a room of one, until the
//! `said` comes back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use crate::client::{Ws, connect, decode, echo_request, event, next_data};
use crate::pacer::{Pacer, Schedule};
use crate::servers::{CpuTime, Kind, Server};
use ws_host::codec::{ERROR, Message};

/// What one run measured: replies per second, their latency (us), and the
/// CPU time the server and this generator spent meanwhile. At a fixed rate
/// also how late the generator sent each request after its scheduled time
/// (us): when that is small, the latency is the server's.
pub struct Figures {
    pub rate: f64,
    pub latency: Histogram<u64>,
    pub server_cpu: CpuTime,
    pub generator_cpu: CpuTime,
    /// The wall time the CPU times were taken over.
    pub elapsed: Duration,
    pub send_lateness: Histogram<u64>,
}

/// Where a run's CPU counters stood when its load started.
struct Counters {
    server: CpuTime,
    generator: CpuTime,
    at: Instant,
}

impl Counters {
    fn now(server: &Server) -> Counters {
        Counters { server: server.cpu_time(), generator: CpuTime::of_generator(), at: Instant::now() }
    }
}

impl Figures {
    /// The share of its core the server was busy: near 1 when the server
    /// set the pace, lower when it waited for the generator.
    pub fn server_busy(&self) -> f64 {
        self.server_cpu.total().as_secs_f64() / self.elapsed.as_secs_f64()
    }

    /// The share of its core this generator was busy: near 1 when it set
    /// the pace.
    pub fn generator_busy(&self) -> f64 {
        self.generator_cpu.total().as_secs_f64() / self.elapsed.as_secs_f64()
    }

    /// The server's CPU time per reply, in microseconds: what a message
    /// costs the server whether or not the generator kept it busy.
    pub fn cpu_per_message(&self) -> f64 {
        self.per_message(self.server_cpu.total())
    }

    /// The part of [`Self::cpu_per_message`] spent in the kernel.
    pub fn kernel_per_message(&self) -> f64 {
        self.per_message(self.server_cpu.system)
    }

    fn per_message(&self, time: Duration) -> f64 {
        time.as_secs_f64() * 1e6 / self.latency.len().max(1) as f64
    }

    pub fn p50(&self) -> u64 {
        self.latency.value_at_quantile(0.5)
    }

    pub fn p99(&self) -> u64 {
        self.latency.value_at_quantile(0.99)
    }

    pub fn send_lateness_p99(&self) -> u64 {
        self.send_lateness.value_at_quantile(0.99)
    }

    /// The trial whose `key` is the median of `trials` (the upper one of an
    /// even count): a whole run, so its figures belong together.
    pub fn median_by(mut trials: Vec<Figures>, key: impl Fn(&Figures) -> f64) -> Figures {
        assert!(!trials.is_empty(), "a median of no trials");
        trials.sort_by(|a, b| key(a).total_cmp(&key(b)));
        trials.swap_remove(trials.len() / 2)
    }
}

/// `connections` clients in a closed loop for `phase`.
pub async fn closed_loop(server: &Server, connections: usize, payload: usize, phase: Duration) -> Figures {
    let clients = connect_all(server, connections).await;
    let counters = Counters::now(server);
    let deadline = Instant::now() + phase;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(n, mut ws)| {
            let kind = server.kind;
            tokio::spawn(async move {
                let text = "x".repeat(payload);
                let room = format!("room-{n}");
                if matches!(kind, Kind::Chat(_)) {
                    ws.send(event("join", 1, vec![room.as_str().into()])).await.expect("send");
                    expect_reply(next_data(&mut ws).await);
                }
                let mut latency = Histogram::<u64>::new(3).unwrap();
                let mut id = 1;
                while Instant::now() < deadline {
                    id += 1;
                    let started = Instant::now();
                    round_trip(kind, &mut ws, id, &room, &text).await;
                    latency.record(started.elapsed().as_micros() as u64).unwrap();
                }
                let _ = ws.close(None).await;
                latency
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    collect(server, counters, latencies, phase)
}

/// `connections` clients sending `rate` requests per second in all, evenly
/// spaced (slot k goes to connection k mod `connections`), whatever the
/// replies do. One task sends every request as its slot comes due (see
/// `pacer`: it spins, so a request waits for no wake-up; a task per
/// connection, woken through a channel, queued behind the readers, added
/// its own lateness); each connection's reader knows from its count of
/// replies which slot each answers, since replies come in request order.
pub async fn fixed_rate(server: &Server, connections: usize, payload: usize, rate: f64, phase: Duration) -> Figures {
    let clients = connect_all(server, connections).await;
    let counters = Counters::now(server);
    let schedule =
        Schedule { start: Instant::now() + Duration::from_millis(10), period: Duration::from_secs_f64(1.0 / rate) };
    let slots = schedule.slots_within(phase);
    let mut pacer = Pacer::new(schedule);
    let (mut sinks, streams): (Vec<_>, Vec<_>) = clients.into_iter().map(StreamExt::split).unzip();
    let readers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(first, mut stream)| {
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).unwrap();
                for slot in (first as u64..slots).step_by(connections) {
                    expect_reply(next_data(&mut stream).await);
                    latency.record(schedule.at(slot).elapsed().as_micros() as u64).unwrap();
                }
                (stream, latency)
            })
        })
        .collect();
    let ezez = server.kind.ezez();
    let sender = tokio::spawn(async move {
        let text = "x".repeat(payload);
        let mut lateness = Histogram::<u64>::new(3).unwrap();
        let mut sent = 0;
        while sent < slots {
            for slot in pacer.due().await {
                if slot >= slots {
                    break;
                }
                // A connection's n-th request (id n) takes its n-th slot.
                let (connection, id) = (slot as usize % connections, slot / connections as u64 + 1);
                lateness.record(schedule.at(slot).elapsed().as_micros() as u64).unwrap();
                sinks[connection].send(echo_request(ezez, id, &text)).await.expect("send");
                sent = slot + 1;
            }
        }
        (sinks, lateness)
    });
    let mut latencies = Vec::new();
    let mut streams = Vec::new();
    for reader in readers {
        let (stream, latency) = reader.await.unwrap();
        streams.push(stream);
        latencies.push(latency);
    }
    let (sinks, send_lateness) = sender.await.unwrap();
    for (sink, stream) in sinks.into_iter().zip(streams) {
        let _ = sink.reunite(stream).unwrap().close(None).await;
    }
    Figures { send_lateness, ..collect(server, counters, latencies, phase) }
}

/// One connection sending echo requests as fast as they are taken, with up
/// to `window` unanswered (it reads every reply, so it is no slow reader),
/// until `until`; returns its replies per second.
pub async fn flood(addr: SocketAddr, ezez: bool, window: usize, payload: usize, until: Instant) -> f64 {
    let started = Instant::now();
    let (mut sink, mut stream) = connect(addr, "/", ezez).await.split();
    let credit = Arc::new(Semaphore::new(window));
    let replies = Arc::new(AtomicU64::new(0));
    let sender = tokio::spawn({
        let credit = credit.clone();
        async move {
            let text = "x".repeat(payload);
            for id in 1.. {
                credit.acquire().await.expect("never closed").forget();
                sink.send(echo_request(ezez, id, &text)).await.expect("send");
            }
        }
    });
    let reader = tokio::spawn({
        let replies = replies.clone();
        async move {
            while let Some(Ok(_)) = stream.next().await {
                replies.fetch_add(1, Ordering::Relaxed);
                credit.add_permits(1);
            }
        }
    });
    tokio::time::sleep_until(until.into()).await;
    sender.abort();
    reader.abort();
    replies.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// One request and what answers it: the echo reply, or the chat's `said`.
async fn round_trip(kind: Kind, ws: &mut Ws, id: u64, room: &str, text: &str) {
    if !matches!(kind, Kind::Chat(_)) {
        ws.send(echo_request(kind.ezez(), id, text)).await.expect("send");
        return expect_reply(next_data(ws).await);
    }
    ws.send(event("say", id, vec![room.into(), text.into()])).await.expect("send");
    loop {
        match next_data(ws).await {
            Some(Ok(frame)) => match decode(&frame) {
                Some(Message::Event(e)) if e.name == "said" => return,
                // The run's figures would be wrong, and the `said` never comes.
                Some(Message::Event(e)) if e.name == ERROR => {
                    panic!("the server answered with an error: {:?} (its log above says why)", e.args)
                }
                _ => {}
            },
            other => panic!("connection failed: {other:?}"),
        }
    }
}

async fn connect_all(server: &Server, connections: usize) -> Vec<Ws> {
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(connect(server.addr, "/", server.kind.ezez()).await);
    }
    clients
}

fn expect_reply<E: std::fmt::Debug>(reply: Option<Result<tokio_tungstenite::tungstenite::Message, E>>) {
    match reply {
        Some(Ok(_)) => {}
        other => panic!("connection failed: {other:?}"),
    }
}

/// Gathers the connections' histograms and what the run cost since `counters`.
fn collect(server: &Server, counters: Counters, latencies: Vec<Histogram<u64>>, phase: Duration) -> Figures {
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for each in latencies {
        latency.add(each).unwrap();
    }
    Figures {
        rate: latency.len() as f64 / phase.as_secs_f64(),
        latency,
        server_cpu: server.cpu_time().since(counters.server),
        generator_cpu: CpuTime::of_generator().since(counters.generator),
        elapsed: counters.at.elapsed(),
        send_lateness: Histogram::<u64>::new(3).unwrap(),
    }
}
