//! `retalk show --web` in a real headless browser (Debian's chromium,
//! driven through chromedriver): the saved conversation shows, hostile
//! markup shows as text and never runs, a message saved by another process
//! appears without a reload, and no token gets 403. The browser is
//! required: the test fails if chromium or chromedriver is missing (.ci/run
//! installs them).

mod showkit;

use serde_json::json;
use showkit::webdriver::Browser;
use showkit::*;

const HOSTILE: &str =
    "<img src=x onerror=\"document.title='pwned';window.pwned=1\"><script>window.pwned=2</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_saved_messages_as_text_and_updates_live() {
    let p = tokio::task::spawn_blocking(|| {
        let p = pair();
        p.talk("alice", "bob", "Morning! Is the nightly deploy done?");
        p.talk("bob", "alice", "Yes: 142 tests green, rolled out at 06:10.");
        p.talk("bob", "alice", HOSTILE);
        p
    })
    .await
    .unwrap();
    let web = Web::start(&p, "alice");
    let b = Browser::start(1100, 720).await;

    // No token: 403 for the page itself.
    b.goto(&format!("{}/", web.base)).await;
    let body = b.js("return document.body.innerText", json!([])).await;
    assert!(
        body.as_str().unwrap().contains("missing or bad token"),
        "{body}"
    );

    b.goto(&web.url()).await;
    b.until(
        "return document.querySelectorAll('#thread .bubble').length === 3",
        SLOW,
    )
    .await;
    let texts = b
        .js(
            "return [...document.querySelectorAll('#thread .bubble .text')].map(e => e.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(
        texts,
        json!([
            "Morning! Is the nightly deploy done?",
            "Yes: 142 tests green, rolled out at 06:10.",
            HOSTILE
        ])
    );
    let sides = b
        .js(
            "return [...document.querySelectorAll('#thread .bubble')].map(e => e.classList.contains('out') ? 'out' : 'in')",
            json!([]),
        )
        .await;
    assert_eq!(sides, json!(["out", "in", "in"]));
    let side = b
        .js(
            "return [...document.querySelectorAll('#convs .conv')].map(e => [e.querySelector('.name').textContent, e.querySelector('.count').textContent])",
            json!([]),
        )
        .await;
    assert_eq!(side, json!([["bob", "3"]]));
    // The markup did not become elements and nothing in it ran.
    let ran = b
        .js(
            "return [document.querySelectorAll('#thread img, #thread script').length, window.pwned === undefined, document.title]",
            json!([]),
        )
        .await;
    assert_eq!(ran, json!([0, true, "retalk"]));

    // Saved by another process: appears without a reload (the marker
    // survives) and moves the sidebar's count.
    b.js("window.sameDocument = 42; return true", json!([]))
        .await;
    let q = tokio::task::spawn_blocking(move || {
        p.send_saved("alice", "bob", "Great, thanks! Closing the ticket.");
        p
    })
    .await
    .unwrap();
    b.until(
        "return [...document.querySelectorAll('#thread .bubble .text')].some(e => e.textContent === 'Great, thanks! Closing the ticket.')",
        SLOW,
    )
    .await;
    let same = b.js("return window.sameDocument", json!([])).await;
    assert_eq!(same, json!(42), "no reload");
    b.until(
        "return document.querySelector('#convs .conv .count').textContent === '4'",
        SLOW,
    )
    .await;
    let ran = b.js("return window.pwned === undefined", json!([])).await;
    assert_eq!(ran, json!(true));

    if let Some(path) = std::env::var_os("RETALK_SCREENSHOT") {
        b.screenshot(std::path::Path::new(&path)).await;
    }

    // Phone width: the thread alone, bubbles inside the screen, and a
    // button back to the list.
    b.resize(390, 800).await;
    let fits = b
        .until(
            "const w = document.documentElement.clientWidth; \
             const side = document.getElementById('side'); \
             const bubbles = [...document.querySelectorAll('#thread .bubble')]; \
             return w <= 400 && side.offsetParent === null && \
               bubbles.every(e => e.getBoundingClientRect().right <= w + 0.5) && \
               document.scrollingElement.scrollWidth <= w",
            SLOW,
        )
        .await;
    assert_eq!(fits, json!(true));
    b.js(
        "document.getElementById('back').click(); return true",
        json!([]),
    )
    .await;
    b.until(
        "return document.getElementById('side').offsetParent !== null && \
         document.getElementById('main').offsetParent === null",
        SLOW,
    )
    .await;
    drop(b);
    drop(web);
    drop(q);
}
