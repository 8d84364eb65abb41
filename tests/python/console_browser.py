"""Drives the cch console in headless Chromium (Debian's chromium + chromedriver): admin login,
every admin page, Chinese headings, key-holder login. Saves a screenshot per page and checks
that each is not blank."""
import os, struct, zlib, sys
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

base = os.environ["CCH_BASE_URL"]
shots = os.environ["CCH_SHOTS"]
os.makedirs(shots, exist_ok=True)

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--disable-dev-shm-usage"]:
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
driver.set_page_load_timeout(30)

def colours(png):
    """Number of distinct pixel rows: a blank page has one."""
    # Decode just enough PNG to count distinct scanlines (8-bit RGB/RGBA, non-interlaced).
    pos, idat, w, bpp = 8, b"", 0, 4
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w = struct.unpack(">I", data[:4])[0]
            bpp = {2: 3, 6: 4}[data[9]]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp + 1
    rows = {raw[i + 1:i + stride] for i in range(0, len(raw), stride)}
    return len(rows)

def shot(name):
    path = os.path.join(shots, name + ".png")
    driver.save_screenshot(path)
    with open(path, "rb") as f:
        png = f.read()
    assert colours(png) > 5, f"{name} screenshot looks blank"

def h1():
    return driver.find_element(By.TAG_NAME, "h1").text

def login(token):
    driver.get(base + "/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#loginform button[type=submit]").click()

try:
    driver.get(base + "/")
    assert driver.current_url.endswith("/login"), driver.current_url
    shot("login")
    login(os.environ["CCH_ADMIN_TOKEN"])
    driver.implicitly_wait(5)
    for path, heading in [("/dashboard", "Dashboard"), ("/providers", "Providers"), ("/providers/new", "Add provider"),
                          ("/users", "Users and keys"), ("/prices", "Prices"), ("/error-rules", "Error rules"),
                          ("/logs", "Logs"), ("/sessions", "Sessions"), ("/settings", "Settings"), ("/client-setup", "Client setup"),
                          ("/leaderboard", "Leaderboard"), ("/notifications", "Notifications"),
                          ("/sensitive-words", "Sensitive words"), ("/audit-logs", "Audit log")]:
        driver.get(base + path)
        assert h1().startswith(heading), (path, h1())
        shot(path.strip("/").replace("/", "_"))
    driver.get(base + "/logs")
    driver.find_element(By.CSS_SELECTOR, "table.logs tbody a").click()
    assert "Provider chain" in driver.page_source
    shot("log_detail")
    # The request just sent is on the dashboard's 24-hour chart, as a line of its provider.
    driver.get(base + "/dashboard")
    driver.find_element(By.CSS_SELECTOR, "#chart-hourly canvas")
    legend = driver.find_element(By.CSS_SELECTOR, "#chart-hourly .u-legend").text
    assert "fake" in legend, legend
    shot("dashboard_chart")
    driver.get(base + "/lang?l=zh-CN&next=/providers")
    assert h1() == "供应商", h1()
    shot("providers_zh")
    driver.get(base + "/sessions")
    assert h1() == "会话", h1()
    shot("sessions_zh")
    driver.get(base + "/dashboard")
    driver.find_element(By.CSS_SELECTOR, "form[action='/api/v1/auth/logout'] button").click()
    driver.delete_all_cookies()
    login(os.environ["CCH_KEY"])
    driver.get(base + "/my-usage")
    assert h1() == "My usage", h1()
    assert "/providers" not in [a.get_attribute("pathname") for a in driver.find_elements(By.CSS_SELECTOR, "nav a")]
    shot("my_usage")
    driver.get(base + "/providers")
    assert "Not allowed" in driver.page_source
    print("console browser: ok")
finally:
    driver.quit()
