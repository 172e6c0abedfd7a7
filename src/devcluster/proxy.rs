//! The cluster network a host-process control plane lacks, for exactly the
//! traffic that needs it: kube-apiserver sends its "cluster" egress (calls
//! to admission webhooks by Service reference) through this HTTP CONNECT
//! proxy on a Unix socket (`--egress-selector-config-file`, transport `uds`).
//! A route maps a Service's name and port
//! (`ecskube-webhook.ecskube-system.svc:443`) to one or more host processes,
//! its endpoints, so the shipped webhook configurations work unmodified; any
//! other target is dialed as it is. (A webhook `url:` is dialed by the API
//! server itself, after a DNS lookup: `https://127.0.0.1:PORT` works, a
//! Service's DNS name there does not.)

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Result;

/// Where each Service goes: one or more host processes (its endpoints).
#[derive(Clone, Default)]
pub struct Routes(Arc<Mutex<HashMap<String, Endpoints>>>);

#[derive(Clone, Default)]
struct Endpoints {
    addrs: Vec<SocketAddr>,
    /// Round robin over the endpoints, as kube-proxy spreads connections.
    next: usize,
}

impl Routes {
    /// Sends `host:port` (as the API server dials it) to `to`.
    pub fn set(&self, target: &str, to: SocketAddr) {
        self.set_all(target, vec![to]);
    }

    /// Sends `host:port` to each of `to` in turn. An endpoint that refuses
    /// the connection is skipped for the next one, as kube-proxy stops
    /// sending to a pod once it has left the Service's endpoints.
    pub fn set_all(&self, target: &str, to: Vec<SocketAddr>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.to_string(), Endpoints { addrs: to, next: 0 });
    }

    pub fn remove(&self, target: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(target);
    }

    /// The endpoints of `target`, starting with the one whose turn it is.
    fn lookup(&self, target: &str) -> Option<Vec<SocketAddr>> {
        let mut routes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let endpoints = routes.get_mut(target)?;
        let n = endpoints.addrs.len().max(1);
        let first = endpoints.next % n;
        endpoints.next = endpoints.next.wrapping_add(1);
        Some(
            endpoints
                .addrs
                .iter()
                .cycle()
                .skip(first)
                .take(endpoints.addrs.len())
                .copied()
                .collect(),
        )
    }
}

/// Connects to the first of `addrs` that accepts.
fn dial_any(addrs: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no endpoints");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, Duration::from_secs(5)) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Starts the proxy on the Unix socket `path`; it lives as long as the process.
pub fn start(routes: Routes, path: &Path) -> Result<()> {
    let listener = UnixListener::bind(path)?;
    thread::Builder::new().name("egress-proxy".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let routes = routes.clone();
            thread::spawn(move || {
                if let Err(e) = tunnel(stream, &routes) {
                    eprintln!("egress proxy: {e}");
                }
            });
        }
    })?;
    Ok(())
}

fn tunnel(client: UnixStream, routes: &Routes) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let mut c = client;
        c.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    let upstream = match routes.lookup(target) {
        Some(addrs) => dial_any(&addrs),
        None => TcpStream::connect(target),
    };
    let mut client = client;
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => {
            client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
            return Err(e);
        }
    };
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    client.set_read_timeout(None)?;
    // Bytes the reader already buffered beyond the headers belong to the tunnel.
    let buffered = reader.buffer().to_vec();
    let (mut up_write, mut up_read) = (upstream.try_clone()?, upstream);
    up_write.write_all(&buffered)?;
    let mut client_read = reader.into_inner();
    let forward = thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut up_write);
        let _ = up_write.shutdown(Shutdown::Write);
    });
    let _ = copy_until_closed(&mut up_read, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = forward.join();
    Ok(())
}

fn copy_until_closed(from: &mut TcpStream, to: &mut UnixStream) -> std::io::Result<u64> {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}
