/*!
 * HaloAgents browser SDK v0.1.0 (sample build)
 * UMD bundle: works as a plain <script> (window.HaloAgents), with an AMD
 * loader (define) and with CommonJS (require). ES5 syntax, no dependencies,
 * no network calls. Styles live in haloagents.css; this file only sets
 * class names (ha-launcher, ha-panel).
 */
(function (root, factory) {
  if (typeof define === "function" && define.amd) {
    define([], factory);
  } else if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.HaloAgents = factory();
  }
}(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var VERSION = "0.1.0";
  var KEY_PREFIXES = ["ab_live_", "ab_test_"];
  var AUTH_ROUTE = /^\/(signin|signup|login|forgot-password|oauth)(\/|$)/i;
  var instance = null;
  var authWarned = false;

  function fail(message) {
    throw new Error("HaloAgents: " + message);
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function copy(obj) {
    var out = {};
    var key;
    for (key in obj) {
      if (Object.prototype.hasOwnProperty.call(obj, key)) { out[key] = obj[key]; }
    }
    return out;
  }

  // Glob to RegExp: "*" matches any characters (including "/"), "?" exactly one.
  function globToRegExp(glob) {
    var escaped = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    return new RegExp("^" + escaped.replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
  }

  function matchesAny(globs, path) {
    for (var i = 0; i < globs.length; i++) {
      if (globToRegExp(globs[i]).test(path)) { return true; }
    }
    return false;
  }

  function currentPath() {
    return typeof location !== "undefined" && location.pathname ? location.pathname : "/";
  }

  function validate(options) {
    if (!isObject(options)) { fail("init(options) requires an options object"); }
    if (typeof options.orgId !== "string" || !options.orgId.replace(/\s/g, "")) {
      fail("orgId must be a non-empty string");
    }
    var key = options.apiKey;
    if (typeof key !== "string" || (key.indexOf(KEY_PREFIXES[0]) !== 0 && key.indexOf(KEY_PREFIXES[1]) !== 0)) {
      fail("apiKey must be a string starting with \"ab_live_\" or \"ab_test_\"");
    }
    if (options.ui !== undefined && !isObject(options.ui)) { fail("ui must be an object"); }
    var globs = options.manualOnPaths;
    if (globs !== undefined) {
      if (!Array.isArray(globs)) { fail("manualOnPaths must be an array of glob strings"); }
      for (var i = 0; i < globs.length; i++) {
        if (typeof globs[i] !== "string") { fail("manualOnPaths must contain only strings"); }
      }
    }
    var config = copy(options);
    config.ui = copy(options.ui || {});
    if (globs) { config.manualOnPaths = globs.slice(); }
    return config;
  }

  function Instance(config) {
    this._config = config;
    this._user = null;
    this._open = false;
    this._launcher = null;
    this._panel = null;
  }

  Instance.prototype.config = function () {
    var out = copy(this._config);
    out.ui = copy(this._config.ui);
    if (this._config.manualOnPaths) { out.manualOnPaths = this._config.manualOnPaths.slice(); }
    return out;
  };

  Instance.prototype.identify = function (userId, traits) {
    if (typeof userId !== "string" || !userId) { fail("identify(userId) requires a non-empty string userId"); }
    if (traits !== undefined && traits !== null && !isObject(traits)) { fail("identify traits must be an object"); }
    this._user = { userId: userId, traits: copy(traits || {}) };
    return this;
  };

  Instance.prototype.user = function () {
    return this._user ? { userId: this._user.userId, traits: copy(this._user.traits) } : null;
  };

  Instance.prototype.isOpen = function () { return this._open; };
  Instance.prototype.open = function () { this._open = true; this._sync(); return this; };
  Instance.prototype.close = function () { this._open = false; this._sync(); return this; };

  // True when auto-open may run on `path`: ui.autoOpenUnseen is set and the
  // path does not match one of the manualOnPaths globs.
  Instance.prototype.autoOpenAllowed = function (path) {
    var globs = this._config.manualOnPaths || [];
    return this._config.ui.autoOpenUnseen === true && !matchesAny(globs, path || currentPath());
  };

  Instance.prototype._sync = function () {
    if (!this._panel) { return; }
    if (this._open) { this._panel.removeAttribute("hidden"); } else { this._panel.setAttribute("hidden", ""); }
    this._launcher.setAttribute("aria-expanded", this._open ? "true" : "false");
  };

  Instance.prototype._render = function () {
    var self = this;
    var doc = document;
    var launcher = doc.createElement("button");
    launcher.type = "button";
    launcher.className = "ha-launcher";
    launcher.setAttribute("data-org-id", this._config.orgId);
    launcher.setAttribute("aria-label", "Open chat");
    launcher.setAttribute("aria-controls", "ha-panel");
    launcher.textContent = "Chat";
    var panel = doc.createElement("div");
    panel.id = "ha-panel";
    panel.className = "ha-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Chat");
    panel.textContent = "Hi! How can we help?";
    launcher.addEventListener("click", function () {
      if (self._open) { self.close(); } else { self.open(); }
    });
    doc.body.appendChild(panel);
    doc.body.appendChild(launcher);
    this._launcher = launcher;
    this._panel = panel;
    this._sync();
  };

  function warnAuthRoute(config) {
    var path = currentPath();
    if (authWarned || config.ui.autoOpenUnseen !== true || !AUTH_ROUTE.test(path)) { return; }
    if (config.manualOnPaths && config.manualOnPaths.length) { return; }
    authWarned = true;
    console.warn("HaloAgents: ui.autoOpenUnseen is on and \"" + path + "\" looks like an auth route; " +
      "set manualOnPaths (e.g. [\"/signin*\", \"/oauth/*\"]) so the panel does not open over sign-in pages.");
  }

  function init(options) {
    if (instance) {
      console.warn("HaloAgents: init() was already called; returning the existing instance.");
      return instance;
    }
    var created = new Instance(validate(options));
    instance = created;
    warnAuthRoute(created._config);
    if (typeof document !== "undefined") {
      if (document.body) {
        created._render();
      } else {
        document.addEventListener("DOMContentLoaded", function () { created._render(); });
      }
    }
    return created;
  }

  function getInstance() {
    return instance;
  }

  return { version: VERSION, init: init, getInstance: getInstance };
}));
//# sourceMappingURL=haloagents.umd.js.map
