//! `lcd network create|ls|inspect|rm`, `lcd port`, and the hidden `network-hook` that runc runs.

use anyhow::{bail, Result};
use libcontainerd_network::{Ipv4Net, Network, Networks};
use serde_json::json;

use crate::cli::{NetworkAction, NetworkCmdArgs, NetworkHookArgs, PortArgs};
use crate::context::Ctx;
use crate::exit::LCD_ERROR;
use crate::network::{self, request_of};

/// `lcd network ...`.
pub async fn network(ctx: &Ctx, args: NetworkCmdArgs) -> Result<i32> {
    let networks = network::layer(ctx);
    match args.action {
        NetworkAction::Create { subnet, name } => {
            let subnet = subnet.map(|s| s.parse::<Ipv4Net>()).transpose()?;
            let created = networks.create(&name, subnet)?;
            println!("{}", created.name);
            Ok(0)
        }
        NetworkAction::Ls { quiet } => {
            let list = with_default(&networks)?;
            if quiet {
                for n in &list {
                    println!("{}", n.name);
                }
                return Ok(0);
            }
            println!("{}", row("NAME", "DRIVER", "SUBNET", "BRIDGE"));
            println!("{}", row("host", "host", "", ""));
            println!("{}", row("none", "null", "", ""));
            for n in &list {
                println!(
                    "{}",
                    row(&n.name, "bridge", &n.subnet.to_string(), &n.bridge)
                );
            }
            Ok(0)
        }
        NetworkAction::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = false;
            let attachments = networks.attachments()?;
            for name in &names {
                match networks.get(name) {
                    Ok(n) => {
                        let containers: serde_json::Map<String, serde_json::Value> = attachments
                            .iter()
                            .filter(|a| a.request.namespace == ctx.namespace)
                            .flat_map(|a| {
                                a.interfaces.iter().filter(|i| &i.network == name).map(|i| {
                                    (
                                        a.request.container_id.clone(),
                                        json!({"IPv4Address": format!("{}/{}", i.ip, i.prefix), "MacAddress": i.mac}),
                                    )
                                })
                            })
                            .collect();
                        out.push(describe(&n, containers));
                    }
                    Err(e) => {
                        eprintln!("lcd: {e}");
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(if failed { LCD_ERROR } else { 0 })
        }
        NetworkAction::Rm { names } => {
            let client = ctx.client().await?;
            let containers = client.list_containers().await?;
            let mut failed = false;
            for name in &names {
                // A created container that has not started yet is on the network too.
                let users: Vec<String> = containers
                    .iter()
                    .filter(|c| {
                        request_of(&c.labels).is_some_and(|r| r.mode.network() == Some(name))
                    })
                    .map(|c| c.id.to_string())
                    .collect();
                let removed = if users.is_empty() {
                    networks.remove(name).map_err(anyhow::Error::from)
                } else {
                    Err(anyhow::anyhow!(
                        "network {name} has active endpoints: container {} uses it",
                        users.join(", ")
                    ))
                };
                match removed {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("lcd: {e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { LCD_ERROR } else { 0 })
        }
    }
}

/// One line of `network ls`.
fn row(name: &str, driver: &str, subnet: &str, bridge: &str) -> String {
    format!("{name:<20} {driver:<10} {subnet:<18} {bridge}")
        .trim_end()
        .to_string()
}

/// The stored networks, with the default one (made now if it is not yet).
fn with_default(networks: &Networks) -> Result<Vec<Network>> {
    networks.get(libcontainerd_network::DEFAULT_NETWORK)?;
    Ok(networks.list()?)
}

/// docker's `network inspect` shape, in part.
fn describe(
    n: &Network,
    containers: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    json!({
        "Name": n.name,
        "Driver": "bridge",
        "Created": n.created,
        "IPAM": {"Driver": "host-local", "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
        "Options": {"com.docker.network.bridge.name": n.bridge},
        "Containers": containers,
    })
}

/// `lcd port ID [PORT[/PROTO]]`: docker's `80/tcp -> 127.0.0.1:8080` lines.
pub async fn port(ctx: &Ctx, args: PortArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let container = crate::state::load(&client, &args.id).await?;
    let id = container.id().clone();
    let ports = match request_of(container.labels()) {
        Some(request) => request.ports,
        None => network::layer(ctx)
            .attachment(&ctx.namespace, id.as_str())?
            .map(|a| a.request.ports)
            .unwrap_or_default(),
    };
    let wanted = args.port.as_deref().map(|p| {
        let (number, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        (number.to_string(), proto.to_string())
    });
    let mut shown = false;
    for port in &ports {
        if let Some((number, proto)) = &wanted {
            if port.container_port.to_string() != *number || port.protocol.to_string() != *proto {
                continue;
            }
            println!("{}:{}", port.host_ip_text(), port.host_port);
        } else {
            println!("{port}");
        }
        shown = true;
    }
    if let (Some(p), false) = (&args.port, shown) {
        bail!("no public port '{p}' published for {id}");
    }
    Ok(0)
}

/// The hook runc runs; see [`crate::network`] for why hooks.
pub async fn hook(ctx: &Ctx, args: NetworkHookArgs) -> Result<i32> {
    match network::run_hook(ctx.data_root.clone(), &args.phase) {
        Ok(()) => Ok(0),
        Err(e) => {
            let said = crate::exit::one_line(&e);
            // No newline: runc quotes this in its error, which lcd shows as one line.
            eprint!("lcd: {said}");
            if let Some(file) = &args.error_file {
                // crun keeps no hook's output: lcd reads the reason here (see network::hook_error).
                let _ = std::fs::write(file, &said);
            }
            Ok(1)
        }
    }
}
