"""The hub's web page in headless Chromium (Debian chromium + chromium-driver, driven by
selenium): the list, search, a module's card with metadata, files and sizes, and metadata shown
as text, never as markup."""
import shutil

import pytest

from conftest import run_lorahub
from hub_support import Hub, create_token, make_adapter

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("Debian chromium + chromium-driver not installed (scripts/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", f"--user-data-dir={tmp_path / 'chrome'}"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_browse_search_and_read_a_module_card(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "dana")
        for repo, task, desc in [("dana/logic", "boolean_expressions", "<img src=x onerror=alert(1)>"),
                                 ("dana/dates", "date_understanding", "dates module")]:
            run_lorahub("hub", "push", make_adapter(tmp_path / repo, rank=4), "--repo", repo,
                        "--task", task, "--description", desc, "--tags", "bbh,t5",
                        "--license", "apache-2.0", "--endpoint", hub.url, "--token", token)
        wait = WebDriverWait(browser, 30)
        browser.get(hub.url + "/")
        items = lambda: browser.find_elements(By.CSS_SELECTOR, "#results li")
        wait.until(lambda d: len(items()) == 2)
        assert {li.get_attribute("data-id") for li in items()} == {"dana/logic", "dana/dates"}

        box = browser.find_element(By.ID, "q")
        box.send_keys("boolean")
        browser.find_element(By.ID, "go").click()
        wait.until(lambda d: len(items()) == 1)
        items()[0].click()
        wait.until(lambda d: d.find_elements(By.ID, "card-title"))
        assert browser.find_element(By.ID, "card-title").text == "dana/logic"
        field = lambda name: browser.find_element(By.CSS_SELECTOR, f'#meta td[data-field="{name}"]').text
        assert field("task") == "boolean_expressions"
        assert field("rank") == "4"
        assert field("alpha") == "8"
        assert field("targets") == "q, v"
        assert field("base model") == "lorahub-test/tiny-t5"
        assert field("license") == "apache-2.0"
        assert field("tags") == "bbh, t5"
        # The description is shown as text: the <img> in it never becomes an element.
        assert field("description") == "<img src=x onerror=alert(1)>"
        assert browser.find_elements(By.CSS_SELECTOR, "#card img") == []
        browser.save_screenshot(str(tmp_path / "card.png"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#files tr")[1:]
        files = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
                 for r in rows}
        weights = (tmp_path / "dana/logic" / "adapter_model.safetensors").stat().st_size
        assert set(files) == {"README.md", "adapter_config.json", "adapter_model.safetensors"}
        assert files["adapter_model.safetensors"] == f"{weights / 1024:.1f} KiB"
        link = browser.find_element(By.LINK_TEXT, "adapter_config.json").get_attribute("href")
        assert hub.http.get(link).status_code == 200

        browser.find_element(By.ID, "q").clear()
        browser.find_element(By.ID, "rank").send_keys("16")
        browser.find_element(By.ID, "go").click()
        wait.until(lambda d: browser.find_element(By.ID, "status").text == "0 modules")
        browser.save_screenshot(str(tmp_path / "hub.png"))
