//! Class migrations with wrangler's meaning, across restarts of the application.

use dormouse::Migration;
use dormouse::axum::Router;
use dormouse::axum::extract::{Path, Request as AxumRequest, State as Extract};
use dormouse::axum::routing::get;
use dormouse::http::{Method, StatusCode};
use dormouse::prelude::*;
use dormouse_testing::{TempDir, TestServer};

/// Declares a counter class under a given name (migrations are about class names).
macro_rules! counter_class {
    ($name:ident) => {
        #[derive(Debug)]
        struct $name {
            state: State,
        }

        impl DurableObject for $name {
            fn new(state: State, _env: Env) -> Self {
                $name { state }
            }

            async fn fetch(&mut self, req: Request) -> Result<Response> {
                let storage = self.state.storage()?;
                let mut count: u64 = storage.get("count")?.unwrap_or(0);
                if req.method() == Method::POST {
                    count += 1;
                    storage.put("count", count)?;
                }
                Ok(response::text(
                    StatusCode::OK,
                    format!("{count} {}", self.state.id()),
                ))
            }
        }
    };
}

counter_class!(Counter);
counter_class!(Tally);
counter_class!(Scratch);

async fn route(
    Extract(env): Extract<Env>,
    Path((binding, name)): Path<(String, String)>,
    req: AxumRequest,
) -> Result<Response> {
    env.durable_object(&binding)?
        .get_by_name(&name)?
        .fetch(req)
        .await
}

fn worker(app: App) -> App {
    app.worker(|env| {
        Router::new()
            .route("/{binding}/{name}", get(route).post(route))
            .with_state(env)
    })
}

fn v1() -> Migration {
    Migration::new("v1").new_classes(["Counter", "Scratch"])
}

/// `count id` as answered by a counter.
async fn hit(server: &TestServer, method: &str, path: &str) -> (u64, String) {
    let reply = server.request(method, path, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (count, id) = reply.body.split_once(' ').unwrap();
    (count.parse().unwrap(), id.to_owned())
}

#[tokio::test]
async fn a_renamed_class_keeps_its_objects_data_and_ids() {
    let dir = TempDir::new("rename");
    let app = worker(
        App::new()
            .durable_object::<Counter>("COUNTER")
            .durable_object::<Scratch>("SCRATCH")
            .migration(v1()),
    );
    let server = TestServer::start_in(app, dir.path(), |_| {}).await;
    for _ in 0..3 {
        hit(&server, "POST", "/COUNTER/a").await;
    }
    let (_, id_before) = hit(&server, "GET", "/COUNTER/a").await;
    server.stop().await;

    let v2 = Migration::new("v2").rename("Counter", "Tally");
    let app = worker(
        App::new()
            .durable_object::<Tally>("TALLY")
            .durable_object::<Scratch>("SCRATCH")
            .migration(v1())
            .migration(v2.clone()),
    );
    let server = TestServer::start_in(app, dir.path(), |_| {}).await;
    assert_eq!(
        hit(&server, "GET", "/TALLY/a").await,
        (3, id_before),
        "same data, same id"
    );
    server.stop().await;

    // Binding the old name again is refused rather than silently starting empty.
    let app = worker(
        App::new()
            .durable_object::<Counter>("COUNTER")
            .migration(v1())
            .migration(v2),
    );
    let error = TestServer::try_start_in(app, dir.path(), |_| {})
        .await
        .unwrap_err();
    assert!(
        error.contains("class \"Counter\" was renamed to \"Tally\" by migration \"v2\""),
        "{error}"
    );
}

#[tokio::test]
async fn a_deleted_class_loses_its_data_and_cannot_be_bound() {
    let dir = TempDir::new("delete");
    let app = worker(
        App::new()
            .durable_object::<Counter>("COUNTER")
            .durable_object::<Scratch>("SCRATCH")
            .migration(v1()),
    );
    let server = TestServer::start_in(app, dir.path(), |_| {}).await;
    hit(&server, "POST", "/SCRATCH/tmp").await;
    hit(&server, "POST", "/COUNTER/keep").await;
    server.stop().await;
    let scratch_dir = dir.path().join("objects/Scratch");
    assert!(scratch_dir.exists());

    let v2 = Migration::new("v2").delete_classes(["Scratch"]);
    let app = worker(
        App::new()
            .durable_object::<Counter>("COUNTER")
            .migration(v1())
            .migration(v2.clone()),
    );
    let server = TestServer::start_in(app, dir.path(), |_| {}).await;
    assert!(
        !scratch_dir.exists(),
        "the deleted class's objects are gone"
    );
    assert_eq!(
        hit(&server, "GET", "/COUNTER/keep").await.0,
        1,
        "other classes keep their data"
    );
    server.stop().await;

    let app = worker(
        App::new()
            .durable_object::<Counter>("COUNTER")
            .durable_object::<Scratch>("SCRATCH")
            .migration(v1())
            .migration(v2),
    );
    let error = TestServer::try_start_in(app, dir.path(), |_| {})
        .await
        .unwrap_err();
    assert!(
        error.contains("class \"Scratch\" was deleted by migration \"v2\""),
        "{error}"
    );
}

#[tokio::test]
async fn migrations_from_a_config_file_are_applied_once_and_must_keep_their_order() {
    let dir = TempDir::new("config");
    let config = dir.path().join("dormouse.toml");
    std::fs::write(&config, "[vars]\nMODE = \"test\"\n\n[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Counter\"]\n").unwrap();
    for round in 1..=2 {
        let app = worker(App::new().durable_object::<Counter>("COUNTER"));
        let server =
            TestServer::start_in(app, dir.path(), |args| args.config = Some(config.clone())).await;
        assert_eq!(
            hit(&server, "POST", "/COUNTER/c").await.0,
            round,
            "data kept, migration not applied twice"
        );
        assert_eq!(server.runtime().env().var("MODE").as_deref(), Some("test"));
        server.stop().await;
    }
    std::fs::write(&config, "[[migrations]]\ntag = \"v0\"\n\n[[migrations]]\ntag = \"v1\"\nnew_classes = [\"Counter\"]\n").unwrap();
    let app = worker(App::new().durable_object::<Counter>("COUNTER"));
    let error =
        TestServer::try_start_in(app, dir.path(), |args| args.config = Some(config.clone()))
            .await
            .unwrap_err();
    assert!(
        error.contains(
            "migration \"v1\" was applied as step 1 but the configuration has \"v0\" there"
        ),
        "{error}"
    );

    std::fs::write(
        &config,
        "[[migrations]]\ntag = \"v1\"\nnew_clases = [\"Counter\"]\n",
    )
    .unwrap();
    let app = worker(App::new().durable_object::<Counter>("COUNTER"));
    let error =
        TestServer::try_start_in(app, dir.path(), |args| args.config = Some(config.clone()))
            .await
            .unwrap_err();
    assert!(error.contains("unknown field `new_clases`"), "{error}");
}

#[tokio::test]
async fn a_class_left_unbound_keeps_its_data() {
    let dir = TempDir::new("unbound");
    let app = worker(
        App::new()
            .durable_object::<Counter>("COUNTER")
            .durable_object::<Scratch>("SCRATCH"),
    );
    let server = TestServer::start_in(app, dir.path(), |_| {}).await;
    hit(&server, "POST", "/SCRATCH/s").await;
    server.stop().await;
    // A release that forgets the class (without a deleted_classes migration) keeps its data.
    let app = worker(App::new().durable_object::<Counter>("COUNTER"));
    TestServer::start_in(app, dir.path(), |_| {})
        .await
        .stop()
        .await;
    let app = worker(App::new().durable_object::<Scratch>("SCRATCH"));
    let server = TestServer::start_in(app, dir.path(), |_| {}).await;
    assert_eq!(hit(&server, "GET", "/SCRATCH/s").await.0, 1);
}
