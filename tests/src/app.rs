use serde_json::{Value, json};
use tenfold_app::App;
use tenfold_config::{Mode, SecretString, Settings, SmtpTls};

use crate::{GqlResponse, Mailbox, PASSWORD, TestDb};

/// A running Tenfold server with its own database and mailbox.
pub struct TestApp {
    pub address: String,
    /// The metrics listener's port, when `metrics.port` gave it its own.
    pub metrics_port: Option<u16>,
    pub client: reqwest::Client,
    pub mailbox: Mailbox,
    pub settings: Settings,
    pub app: App,
    // Dropped last: the database outlives the server that uses it.
    pub db: TestDb,
}

/// A signed-in user as the tests see them.
#[derive(Debug, Clone)]
pub struct Session {
    pub email: String,
    pub access: String,
    pub refresh: String,
    /// Global ids, as the API returns them.
    pub user_id: String,
    pub org_id: String,
}

impl Session {
    /// The organization's raw id, decoded from its global id the way the
    /// server decodes it (for operator commands and blob listings).
    pub fn org(&self) -> tenfold_domain::OrgId {
        tenfold_domain::OrgId(tenfold_graphql::GlobalId::decode(&self.org_id, "organization").unwrap().id)
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings adjusted by `tweak` (after the test defaults).
    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_with_families(&tenfold_ml::family::Registry::standard(), tweak).await
    }

    /// Spawns with the given model families (a test registers its own).
    pub async fn spawn_with_families(families: &tenfold_ml::family::Registry, tweak: impl FnOnce(&mut Settings)) -> Self {
        tenfold_cli::logging::init("json", &std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()));
        let db = TestDb::create().await;
        let mailbox = Mailbox::default();
        let smtp_port = mailbox.start().await;

        let mut settings = Settings { mode: Mode::Test, ..Settings::default() };
        settings.server.host = "127.0.0.1".into();
        settings.server.port = 0;
        settings.server.workers = 1;
        settings.server.shutdown_grace_seconds = 1;
        settings.database.url = SecretString::from(db.app_url().to_owned());
        settings.database.migration_url = SecretString::from(db.owner_url().to_owned());
        settings.database.max_connections = 5;
        // A paused worker's open transaction is cut off quickly (PostgreSQL).
        settings.database.idle_in_transaction_timeout_ms = 1500;
        // Blobs and other files of this test only.
        settings.storage.data_dir = db.files_dir();
        settings.mail.smtp_host = "127.0.0.1".into();
        settings.mail.smtp_port = smtp_port;
        settings.mail.smtp_tls = SmtpTls::None;
        settings.auth.jwt_secret = SecretString::from(tenfold_app::secrets::random_base62(48));
        // Cheap hashing: the tests check behaviour, not the work factor.
        settings.auth.argon2_memory_kib = 1024;
        settings.auth.argon2_iterations = 1;
        // The general API limits stay out of the way of tests that make many
        // requests at once; tests of the limits set their own.
        settings.rate_limits.ip_per_minute = 1_000_000;
        settings.rate_limits.org_per_minute = 1_000_000;
        // Jobs on a test's time scale: a worker silent for 2 s is dead,
        // retries wait a fraction of a second, relays poll often.
        settings.jobs.lease_seconds = 2.0;
        settings.jobs.backoff_base_seconds = 0.2;
        settings.jobs.backoff_max_seconds = 1.0;
        settings.jobs.redispatch_after_seconds = 2.0;
        settings.jobs.poll_interval_ms = 100;
        settings.jobs.step_event_interval_ms = 200;
        settings.jobs.shutdown_grace_seconds = 10.0;
        // Webhooks to a receiver on loopback, retried quickly.
        settings.webhooks.allow_http = true;
        settings.webhooks.allow_private_networks = true;
        settings.webhooks.backoff_base_seconds = 0.2;
        settings.webhooks.backoff_max_seconds = 1.0;
        settings.webhooks.max_attempts = 3;
        if let Ok(url) = std::env::var("TENFOLD_TEST_REDIS_URL")
            && !url.is_empty()
        {
            settings.redis.url = SecretString::from(url);
            settings.redis.key_prefix = format!("t:{}:", uuid::Uuid::new_v4().simple());
        }
        tweak(&mut settings);

        tenfold_cli::boot::migrate(&settings).await.expect("migrations");
        let app = tenfold_cli::boot::build_app_with(settings.clone(), families).await.expect("build app");
        let runtime = tenfold_api::Application::runtime(&app, families.clone());
        let application = tenfold_api::Application::build_with(app.clone(), runtime).expect("bind server");
        let address = format!("http://127.0.0.1:{}", application.port());
        let metrics_port = application.metrics_port();
        tokio::spawn(application.run_until_stopped());
        // Uploads are validated by a worker's validation pool: the test
        // process runs one (tests of validation without it set
        // `jobs.validation_slots = 0` and start a worker process).
        let slots = settings.jobs.validation_slots;
        if slots > 0 {
            let id = format!("test-{}", uuid::Uuid::new_v4().simple());
            let work = settings.storage.data_dir.join("validation-work");
            tokio::spawn(tenfold_worker::run_validation(app.clone(), id, slots, work, std::future::pending()));
        }
        // Idle connections are dropped before the server's keep-alive (5 s)
        // closes them: reusing one the server is closing at that instant
        // fails the request (IncompleteMessage) after a slow step.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap();
        Self { address, metrics_port, client, mailbox, settings, app, db }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs a GraphQL operation as JSON.
    pub async fn gql(&self, query: &str, variables: Value, bearer: Option<&str>) -> GqlResponse {
        let mut req = self.client.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        Self::read(req.send().await.unwrap()).await
    }

    pub async fn read(res: reqwest::Response) -> GqlResponse {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        GqlResponse { status, body, headers }
    }

    pub async fn sign_up(&self, email: &str, org: &str) -> Session {
        let res = self
            .gql(
                "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken refreshToken user { id email } organization { id } } }",
                json!({ "i": { "email": email, "password": PASSWORD, "organizationName": org } }),
                None,
            )
            .await
            .ok();
        Session {
            email: email.to_owned(),
            access: res.str_at("/signUp/accessToken"),
            refresh: res.str_at("/signUp/refreshToken"),
            user_id: res.str_at("/signUp/user/id"),
            org_id: res.str_at("/signUp/organization/id"),
        }
    }

    pub async fn log_in(&self, email: &str, password: &str) -> GqlResponse {
        self.gql(
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken refreshToken user { id } organization { id } role } }",
            json!({ "i": { "email": email, "password": password } }),
            None,
        )
        .await
    }

    /// Invites `email` with `role` into `owner`'s organization and accepts
    /// it as a new account, through the real email.
    pub async fn join(&self, owner: &Session, email: &str, role: &str) -> Session {
        self.gql(
            "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id } }",
            json!({ "i": { "email": email, "role": role } }),
            Some(&owner.access),
        )
        .await
        .ok();
        let mail = self.mailbox.wait_for(email, "invited you").await;
        let token = mail.token("tfi_").expect("invitation token in the email");
        let res = self
            .gql(
                "mutation($t: String!, $p: String) { acceptInvitation(token: $t, password: $p) { accessToken refreshToken user { id } organization { id } } }",
                json!({ "t": token, "p": PASSWORD }),
                None,
            )
            .await
            .ok();
        Session {
            email: email.to_owned(),
            access: res.str_at("/acceptInvitation/accessToken"),
            refresh: res.str_at("/acceptInvitation/refreshToken"),
            user_id: res.str_at("/acceptInvitation/user/id"),
            org_id: res.str_at("/acceptInvitation/organization/id"),
        }
    }

    /// Creates an API key with `scopes` as `session`; returns (global id, secret).
    pub async fn api_key(&self, session: &Session, scopes: &[&str]) -> (String, String) {
        let res = self
            .gql(
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id } secret } }",
                json!({ "i": { "name": "test key", "scopes": scopes } }),
                Some(&session.access),
            )
            .await
            .ok();
        (res.str_at("/createApiKey/apiKey/id"), res.str_at("/createApiKey/secret"))
    }
}

const UPLOAD: &str =
    "mutation($input: UploadDatasetInput!) { uploadDataset(input: $input) { id version status fileName sizeBytes sha256 } }";

impl TestApp {
    /// Uploads a file by the GraphQL multipart request spec.
    pub async fn upload(&self, bearer: Option<&str>, name: &str, family: &str, file_name: &str, bytes: Vec<u8>) -> GqlResponse {
        self.upload_with(bearer, json!({ "name": name, "family": family, "file": null }), file_name, bytes).await
    }

    /// Uploads with any `UploadDatasetInput` (its `file` must be null).
    pub async fn upload_with(&self, bearer: Option<&str>, input: Value, file_name: &str, bytes: Vec<u8>) -> GqlResponse {
        let operations = json!({ "query": UPLOAD, "variables": { "input": input } });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.input.file"] }).to_string())
            .part("0", reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()));
        let mut req = self.client.post(self.url("/graphql")).header("Apollo-Require-Preflight", "true").multipart(form);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// Imports a model (`importModelVersion`) by the multipart spec: the
    /// weights, the card and optionally the report as files.
    pub async fn import_model(
        &self,
        bearer: Option<&str>,
        model: &str,
        family: &str,
        weights: Vec<u8>,
        card: Vec<u8>,
        report: Option<Vec<u8>>,
    ) -> GqlResponse {
        let mut files = vec![("weights", "model.safetensors", weights), ("card", "model.json", card)];
        if let Some(report) = report {
            files.push(("report", "report.json", report));
        }
        self.import_files(bearer, model, family, files).await
    }

    /// Imports any set of files (`importModelVersion`): (input field, file name, bytes).
    pub async fn import_files(&self, bearer: Option<&str>, model: &str, family: &str, files: Vec<(&str, &str, Vec<u8>)>) -> GqlResponse {
        const IMPORT: &str = "mutation($i: ImportModelVersionInput!) { importModelVersion(input: $i) { id version modelId architecture classes sizeBytes lineage { source engine } } }";
        let mut input = json!({ "model": model, "family": family });
        let mut map = json!({});
        for (i, (field, _, _)) in files.iter().enumerate() {
            input[*field] = Value::Null;
            map[i.to_string()] = json!([format!("variables.i.{field}")]);
        }
        // The spec's order: operations, map, then the files.
        let operations = json!({ "query": IMPORT, "variables": { "i": input } });
        let mut form = reqwest::multipart::Form::new().text("operations", operations.to_string()).text("map", map.to_string());
        for (i, (_, file_name, bytes)) in files.into_iter().enumerate() {
            form = form.part(i.to_string(), reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()));
        }
        let mut req = self.client.post(self.url("/graphql")).header("Apollo-Require-Preflight", "true").multipart(form);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// Waits (up to 60 s) until a dataset version leaves PENDING; returns it.
    pub async fn wait_validated(&self, bearer: &str, version_id: &str) -> Value {
        let q = "query($id: ID!) { node(id: $id) { ... on DatasetVersion { id version status stats preview splits redaction problemCount problems { location code message hint } warnings { code location message } } } }";
        for _ in 0..1200 {
            let res = self.gql(q, json!({ "id": version_id }), Some(bearer)).await.ok();
            if res.at("/node/status") != &json!("PENDING") {
                return res.at("/node").clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("dataset version {version_id} still PENDING after 60 s");
    }
}

/// Where `scripts/fixtures` put the real datasets.
pub fn fixtures_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("TENFOLD_FIXTURES_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        cache.join("tenfold/fixtures")
    });
    assert!(dir.join("mnist-5k.zip").exists(), "fixtures missing in {}: run scripts/fixtures", dir.display());
    dir
}
