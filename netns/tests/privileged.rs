//! Privileged tests of rstack-netns: real bridges, veths, nft rules and DNS
//! sockets, as root.
//!
//! Every test runs in a child process (this same binary, re-executed) that
//! first unshares a fresh network and mount namespace, makes `/` private and
//! brings `lo` up: the "host" of the test is that namespace, the
//! "containers" are namespaces pinned inside it, and nothing touches the
//! real host. Without root, `nft` or `ip` the tests are reported as ignored
//! with the reason, never as passed.

mod privileged {
    pub mod cases;
    pub mod harness;
    pub mod ports_cases;
}

use privileged::{cases, harness, ports_cases};

fn main() {
    if let Ok(spec) = std::env::var(harness::WORKER_ENV) {
        std::process::exit(cases::ipam_worker(&spec));
    }
    if let Ok(name) = std::env::var(harness::CHILD_ENV) {
        std::process::exit(harness::child_main(&name, all_cases()));
    }
    let args = libtest_mimic::Arguments::from_args();
    let skip = harness::skip_reason();
    if let Some(reason) = &skip {
        eprintln!("privileged tests SKIPPED: {reason}");
    }
    let trials = all_cases()
        .into_iter()
        .map(
            |(name, _)| match skip.clone().or_else(|| harness::missing_tool(name)) {
                Some(reason) => rstack_testkit::skipped(name, reason),
                None => libtest_mimic::Trial::test(name, move || {
                    harness::run_in_namespace(name).map_err(Into::into)
                }),
            },
        )
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    rstack_testkit::report();
    conclusion.exit();
}

fn all_cases() -> Vec<(&'static str, harness::Case)> {
    vec![
        (
            "pinned_netns_lifecycle",
            cases::pinned_netns_lifecycle as harness::Case,
        ),
        (
            "network_create_inspect_rm",
            cases::network_create_inspect_rm,
        ),
        (
            "subnet_pool_avoids_routes",
            cases::subnet_pool_avoids_routes,
        ),
        (
            "containers_reach_and_resolve",
            cases::containers_reach_and_resolve,
        ),
        (
            "internal_network_has_no_way_out",
            cases::internal_network_has_no_way_out,
        ),
        (
            "static_ip_mac_and_second_network",
            cases::static_ip_mac_and_second_network,
        ),
        (
            "ipam_concurrent_processes",
            cases::ipam_concurrent_processes,
        ),
        (
            "connect_container_many_networks",
            cases::connect_container_many_networks,
        ),
        ("failed_create_is_undone", cases::failed_create_is_undone),
        (
            "busybox_clients_resolve_and_fetch",
            cases::busybox_clients_resolve_and_fetch,
        ),
        ("published_ports", ports_cases::published_ports),
        (
            "udp_flow_follows_restarted_container",
            ports_cases::udp_flow_follows_restarted_container,
        ),
        (
            "port_conflicts_leave_nothing",
            ports_cases::port_conflicts_leave_nothing,
        ),
    ]
}
