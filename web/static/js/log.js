// log.js: the page's log panel with levels, and a text copy of it.

const LEVELS = ['debug', 'info', 'warn', 'error'];

export class Logger {
  /**
   * @param {HTMLElement} panel where lines are appended
   * @param {() => string} levelOf returns the minimum level to show
   */
  constructor(panel, levelOf) {
    this.panel = panel;
    this.levelOf = levelOf;
    this.lines = [];
    this.t0 = performance.now();
  }

  write(level, msg) {
    const line = { time: new Date().toISOString(), level, msg: String(msg) };
    this.lines.push(line);
    if (this.lines.length > 5000) this.lines.shift();
    const fn = level === 'error' ? console.error : level === 'warn' ? console.warn : console.log;
    fn(`[${level.toUpperCase()}] ${line.msg}`);
    if (LEVELS.indexOf(level) < LEVELS.indexOf(this.levelOf())) return;
    this.appendLine(line);
  }

  appendLine(line) {
    if (!this.panel) return;
    const div = document.createElement('div');
    div.className = `log-line log-${line.level}`;
    div.textContent = `${line.time.slice(11, 23)} [${line.level.toUpperCase()}] ${line.msg}`;
    const atBottom = this.panel.scrollTop + this.panel.clientHeight >= this.panel.scrollHeight - 4;
    this.panel.appendChild(div);
    while (this.panel.childNodes.length > 2000) this.panel.removeChild(this.panel.firstChild);
    if (atBottom) this.panel.scrollTop = this.panel.scrollHeight;
  }

  /** Redraws the panel for the current level. */
  refresh() {
    if (!this.panel) return;
    this.panel.textContent = '';
    const min = LEVELS.indexOf(this.levelOf());
    for (const l of this.lines) if (LEVELS.indexOf(l.level) >= min) this.appendLine(l);
  }

  clear() {
    this.lines = [];
    if (this.panel) this.panel.textContent = '';
  }

  text() {
    return this.lines.map((l) => `${l.time} [${l.level.toUpperCase()}] ${l.msg}`).join('\n');
  }

  debug(m) { this.write('debug', m); }
  info(m) { this.write('info', m); }
  warn(m) { this.write('warn', m); }
  error(m) { this.write('error', m); }
}

/** Copies text to the clipboard, falling back to a hidden textarea. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (_) {}
    ta.remove();
    return ok;
  }
}
