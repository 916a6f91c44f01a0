//! The seed projects (`seeds/workers/`, the Cloudflare Workers projects as their authors wrote
//! them) on Dormouse's Workers mode against the same projects on workerd, bundled with esbuild
//! as wrangler does: the same frames in, the same frames out, before and after hibernation.
//!
//! Both sides run the projects' own close handling (their compatibility date predates the
//! runtime's automatic close reply), so close reasons are compared too.

use dormouse_oracle::bundle::{self, Served};
use dormouse_oracle::scenarios::{Target, seed000, seed001, seed002, seed004};
use dormouse_testing::{TempDir, Workerd, WorkersServer, seed_project};
use dormouse_workers::WorkerConfig;

/// (workerd socket, seed project, binding, object name) of each project compared.
const PROJECTS: [(&str, &str, &str, &str); 5] = [
    ("hjs000", "seed000-chat-room", "CHAT_ROOM", "oracle"),
    (
        "hjs001",
        "seed001-hibernation-server",
        "WEBSOCKET_HIBERNATION_SERVER",
        "foo",
    ),
    (
        "hjs002ts",
        "seed002-echo-ts",
        "WEBSOCKET_HIBERNATION_SERVER",
        "foo",
    ),
    (
        "hjs002js",
        "seed002-echo-js",
        "WEBSOCKET_HIBERNATION_SERVER",
        "foo",
    ),
    (
        "hjs004",
        "seed004-client-registry",
        "WEBSOCKET_HIBERNATION_SERVER",
        "registry",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_projects_answer_on_dormouse_as_on_workerd() {
    let out = TempDir::new("bundles");
    let configs: Vec<WorkerConfig> = PROJECTS
        .iter()
        .map(|(_, project, _, _)| WorkerConfig::load(&seed_project(project), None).unwrap())
        .collect();
    let bundles: Vec<String> = PROJECTS
        .iter()
        .map(|(socket, project, _, _)| bundle::bundle(&seed_project(project), socket, out.path()))
        .collect();
    let served: Vec<Served<'_>> = PROJECTS
        .iter()
        .zip(&bundles)
        .zip(&configs)
        .map(|(((socket, ..), bundle), config)| Served {
            socket,
            bundle,
            config,
        })
        .collect();
    let config_file = out.path().join("config.capnp");
    std::fs::write(&config_file, bundle::workerd_config(&served)).unwrap();
    let sockets: Vec<&str> = PROJECTS.iter().map(|(socket, ..)| *socket).collect();
    let workerd = Workerd::start_serving(&config_file, &sockets, None).await;

    let mut ours = Vec::new();
    for (_, project, _, _) in PROJECTS {
        ours.push(WorkersServer::start(&seed_project(project)).await);
    }

    // workerd: every scenario at once, so that its eviction timer is waited out once.
    let on_workerd = tokio::join!(
        seed000(
            Target::exact(workerd.addr("hjs000")),
            Workerd::wait_for_eviction
        ),
        seed001(
            Target::exact(workerd.addr("hjs001")),
            Workerd::wait_for_eviction
        ),
        seed002(
            Target::exact(workerd.addr("hjs002ts")),
            Workerd::wait_for_eviction
        ),
        seed002(
            Target::exact(workerd.addr("hjs002js")),
            Workerd::wait_for_eviction
        ),
        seed004(
            Target::exact(workerd.addr("hjs004")),
            Workerd::wait_for_eviction
        ),
    );
    assert!(
        workerd
            .stdout()
            .iter()
            .any(|line| line == "ChatRoom constructor: restored 2 connections"),
        "workerd never re-created the chat room: {:?}",
        workerd.stdout()
    );

    let hibernate = |index: usize| {
        let server = &ours[index];
        let (_, _, binding, name) = PROJECTS[index];
        move || server.hibernate(binding, name)
    };
    let on_dormouse = (
        seed000(Target::exact(ours[0].addr()), hibernate(0)).await,
        seed001(Target::exact(ours[1].addr()), hibernate(1)).await,
        seed002(Target::exact(ours[2].addr()), hibernate(2)).await,
        seed002(Target::exact(ours[3].addr()), hibernate(3)).await,
        seed004(Target::exact(ours[4].addr()), hibernate(4)).await,
    );
    assert_eq!(on_dormouse.0, on_workerd.0, "seed000-chat-room");
    assert_eq!(on_dormouse.1, on_workerd.1, "seed001-hibernation-server");
    assert_eq!(on_dormouse.2, on_workerd.2, "seed002-echo-ts");
    assert_eq!(on_dormouse.3, on_workerd.3, "seed002-echo-js");
    assert_eq!(on_dormouse.4, on_workerd.4, "seed004-client-registry");

    // Dormouse really hibernated each object and woke it with a new instance.
    for (server, (_, project, binding, _)) in ours.iter().zip(PROJECTS) {
        let metrics = server.metrics().await;
        assert_eq!(
            metrics.get("dormouse_object_wakes_total", binding),
            1.0,
            "{project}"
        );
    }
}
