//! A real browser for the console's scenarios: Debian's headless Chromium driven over
//! WebDriver by its chromedriver, on a loopback port of its own. The scenario reads the page
//! with small scripts and waits on conditions in the DOM (never on time), and reads the
//! browser's console log to prove the page logged no error (CSP violations included).

use std::{path::PathBuf, process::Stdio, time::Duration};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::process::free_port;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Waits on the page are bounded by this; a job's whole life in the sandbox fits in it.
pub const WAIT: Duration = Duration::from_secs(40);

pub struct Browser {
    pub client: Client,
    driver_url: String,
    session: String,
    http: reqwest::Client,
    /// chromedriver, leader of a process group that Chromium joins; killed with it on drop.
    driver: Child,
}

/// The folder screenshots are written to: `<target>/console-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("console-screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session at 1280×900. Fails (never skips)
    /// when the browser is not installed: `deploy/local/deps.sh` installs it.
    pub async fn start() -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: run deploy/local/deps.sh (it installs Debian's chromium and \
                 chromium-driver)"
            );
        }
        let http = reqwest::Client::new();
        // chromedriver cannot bind port 0: take a free port, and another if it was taken meanwhile.
        for _ in 0..5 {
            let port = free_port();
            let mut driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|err| panic!("starting {CHROMEDRIVER}: {err}"));
            let driver_url = format!("http://127.0.0.1:{port}");
            if ready(&http, &driver_url, &mut driver).await {
                let client = connect(&driver_url).await;
                let session = client
                    .session_id()
                    .await
                    .expect("the session id")
                    .expect("a session");
                return Self {
                    client,
                    driver_url,
                    session,
                    http,
                    driver,
                };
            }
        }
        panic!("chromedriver did not start on a free port after 5 tries");
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("running {script:?} in the page: {err}"))
    }

    /// Polls `script` until it returns something truthy, which it returns. On time-out the
    /// panic shows what the page says and what it logged.
    pub async fn wait(&self, what: &str, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(value) = self.client.execute(script, Vec::new()).await {
                let truthy = match &value {
                    Value::Null | Value::Bool(false) => false,
                    Value::String(s) => !s.is_empty(),
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    _ => true,
                };
                if truthy {
                    return value;
                }
            }
            if tokio::time::Instant::now() > deadline {
                let page = self
                    .client
                    .execute(
                        "return location.href + '\\n' + document.body.innerText;",
                        Vec::new(),
                    )
                    .await
                    .unwrap_or_default();
                let log = self.console_log().await;
                panic!(
                    "timed out after {WAIT:?} waiting for {what}\npage: {}\nconsole: {log:#?}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the element `css` to exist and returns the text of it.
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const el = document.querySelector({}); return el ? [el.textContent] : null;",
            json!(css)
        );
        let value = self.wait(&format!("{css} to appear"), &script).await;
        value[0].as_str().unwrap_or_default().to_owned()
    }

    pub async fn click(&self, css: &str) {
        self.text(css).await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("finding {css}: {err}"))
            .click()
            .await
            .unwrap_or_else(|err| panic!("clicking {css}: {err}"));
    }

    /// Types into the element `css` (for a file input: the file's path).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.text(css).await;
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("finding {css}: {err}"));
        element.clear().await.ok();
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("typing into {css}: {err}"));
    }

    /// Navigates to `url` (a change of hash only is no reload: the page routes it).
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("opening {url}: {err}"));
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resizing the window");
    }

    /// Saves a PNG of the viewport as `<target>/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing a screenshot");
        path
    }

    /// The browser console's entries since the last call (`{level, message}`), through
    /// chromedriver's log endpoint (WebDriver itself has none).
    pub async fn console_log(&self) -> Vec<Value> {
        let url = format!("{}/session/{}/se/log", self.driver_url, self.session);
        let answer: Value = self
            .http
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("reading the browser log")
            .json()
            .await
            .expect("the browser log is json");
        answer["value"].as_array().cloned().unwrap_or_default()
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self
            .driver
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// True once chromedriver answers ready; false when it exited (its port was taken).
async fn ready(http: &reqwest::Client, url: &str, driver: &mut Child) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(_)) = driver.try_wait() {
            return false;
        }
        let status = http.get(format!("{url}/status")).send().await;
        if let Ok(response) = status
            && let Ok(body) = response.json::<Value>().await
            && body["value"]["ready"] == true
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn connect(driver_url: &str) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions"],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("an object literal")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver_url)
        .await
        .unwrap_or_else(|err| panic!("starting a Chromium session through chromedriver: {err}"))
}
