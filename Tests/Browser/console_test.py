#!/usr/bin/env python3
"""Drives the operator console in a real headless Chromium (Debian's chromium and chromium-driver,
through Selenium): sign in, read the overview, watch it change without a reload, act with a reason,
and check what a reader may not do. Screenshots of each step go to SCREENSHOTS.

    python3 Tests/Browser/console_test.py BASE_URL READER_TOKEN OPERATOR_TOKEN REPORTER_TOKEN SCREENSHOTS

Every wait is bounded; the first failed check ends the run with a non-zero exit.
"""
import datetime, json, os, sys, time, urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

base, reader, operator, reporter, shots = sys.argv[1:6]
os.makedirs(shots, exist_ok=True)

options = webdriver.ChromeOptions()
for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"]:
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
driver.set_page_load_timeout(20)
# An element read while its page is being replaced goes stale: for a wait, that means "not yet".
wait = WebDriverWait(driver, 10, ignored_exceptions=[StaleElementReferenceException])
step = 0


def shot(name):
    global step
    step += 1
    driver.save_screenshot(os.path.join(shots, f"{step:02d}-{name}.png"))


def check(condition, what):
    if not condition:
        shot("failed")
        sys.exit(f"console check failed: {what}\n--- page ---\n{driver.find_element(By.TAG_NAME, 'body').text}")
    print(f"ok: {what}")


def sign_in(token):
    driver.get(base + "/console")
    wait.until(lambda d: d.current_url.endswith("/console/login"))
    field = driver.find_element(By.ID, "token")
    check(driver.find_element(By.CSS_SELECTOR, "label[for=token]").text == "API token", "the login form asks for an API token")
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def sign_out():
    driver.find_element(By.XPATH, "//button[text()='Log out']").click()
    wait.until(lambda d: d.current_url.endswith("/console/login"))


def report(hub, outcome, seconds_ago):
    observed = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    body = json.dumps({"hub": hub, "source": "browser-test", "outcome": outcome,
                       "observedAt": observed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}).encode()
    request = urllib.request.Request(base + "/v1/health-reports", data=body, method="POST", headers={
        "Authorization": f"Bearer {reporter}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        check(response.status == 200, f"report {outcome} for {hub} accepted")


try:
    # A wrong token is refused, and says so.
    sign_in("not-a-valid-token-at-all")
    # The answer is a new page: wait for it rather than read the one being replaced.
    wait.until(lambda d: any("not valid" in body.text for body in d.find_elements(By.TAG_NAME, "body")))
    check("not valid" in driver.find_element(By.TAG_NAME, "body").text, "a wrong token is refused")
    shot("wrong-token")

    # A reader sees the deployments and no action.
    sign_in(reader)
    wait.until(lambda d: d.find_elements(By.ID, "deployments"))
    text = driver.find_element(By.ID, "deployments").text
    for word in ["foundry-prod", "eastus-hub", "westus-hub", "unknown", "serving eastus-hub"]:
        check(word in text, f"the overview shows {word!r}")
    check(not driver.find_elements(By.CSS_SELECTOR, "form.action"), "a reader sees no action buttons")
    shot("overview-reader")

    # The overview follows a failover without a reload.
    driver.execute_script("window.__sameDocument = true;")
    for seconds_ago in [20, 10, 1]:
        report("eastus-hub", "failure", seconds_ago)
    wait = WebDriverWait(driver, 15, ignored_exceptions=[StaleElementReferenceException])
    wait.until(lambda d: "serving westus-hub" in d.find_element(By.ID, "deployments").text)
    hub = driver.find_element(By.ID, "hub-eastus-hub").text
    check("down" in hub, "the failed hub reads down without a reload")
    check(driver.execute_script("return window.__sameDocument === true;"), "the page was not reloaded")
    shot("overview-after-failover")

    # The timeline shows the failover; its mark opens the event with its commands.
    driver.find_element(By.LINK_TEXT, "Timeline").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg.timeline"))
    check("failover eastus-hub → westus-hub" in driver.find_element(By.CSS_SELECTOR, "ol.marks").text,
          "the timeline lists the failover")
    shot("timeline")
    driver.find_element(By.PARTIAL_LINK_TEXT, "failover eastus-hub → westus-hub").click()
    wait.until(lambda d: "route_traffic" in d.find_element(By.TAG_NAME, "main").text)
    check("scale_compute" in driver.find_element(By.TAG_NAME, "main").text, "the event shows its commands")
    shot("failover-event")
    driver.find_element(By.LINK_TEXT, "Commands").click()
    wait.until(lambda d: "route_traffic" in d.find_element(By.TAG_NAME, "main").text)
    check("pending" in driver.find_element(By.TAG_NAME, "main").text, "the commands page lists the pending commands")
    shot("commands")
    driver.find_element(By.LINK_TEXT, "Overview").click()
    wait.until(lambda d: d.find_elements(By.ID, "deployments"))
    sign_out()

    # An operator sees what a failover would do, then pauses with a reason through the preview.
    sign_in(operator)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form.action"))
    driver.find_element(By.XPATH, "//form[contains(@action, '/failover')]//button").click()
    wait.until(lambda d: d.find_elements(By.ID, "reason"))
    preview = driver.find_element(By.TAG_NAME, "main").text
    check("would refuse" in preview or "routes traffic" in preview, "the failover preview says what would happen")
    shot("preview-failover")
    driver.find_element(By.LINK_TEXT, "Cancel").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form.action"))
    driver.find_element(By.XPATH, "//form[contains(@action, '/pause')]//button").click()
    wait.until(lambda d: d.find_elements(By.ID, "reason"))
    check("pauses automation" in driver.find_element(By.TAG_NAME, "main").text, "the pause preview says what it does")
    driver.find_element(By.ID, "reason").send_keys("browser test maintenance")
    # Paused for an hour: the field is a datetime-local in UTC (typing into it depends on the locale).
    until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    check(driver.find_element(By.CSS_SELECTOR, "label[for=until]").text == "Until", "the pause offers an optional until")
    driver.execute_script("document.getElementById('until').value = arguments[0]", until)
    driver.find_element(By.XPATH, "//button[text()='Confirm pause']").click()
    wait.until(lambda d: d.find_elements(By.ID, "deployments") and "paused" in d.find_element(By.ID, "deployments").text)
    check("browser test maintenance" in driver.find_element(By.ID, "deployments").text, "the pause shows its reason")
    check(f"until {until}" in driver.find_element(By.ID, "deployments").text, "the pause shows until when")
    shot("overview-paused")
    sign_out()
    # Readable at phone width: no page is wider than the screen (wide tables scroll in place).
    sign_in(reader)
    wait.until(lambda d: d.find_elements(By.ID, "deployments"))
    driver.set_window_size(390, 844)
    for path in ["/console", "/console/commands", "/console/jobs", "/console/alerts", "/console/events",
                 "/console/cluster", "/console/deployments/foundry-prod/timeline"]:
        driver.get(base + path)
        width, viewport = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        check(width <= viewport + 1, f"{path} fits a phone's width ({width} <= {viewport})")
    shot("phone-width")
    driver.set_window_size(1280, 800)
    sign_out()
    print("console: every check passed; screenshots in " + shots)
finally:
    driver.quit()
