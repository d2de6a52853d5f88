// Carbon'Clap XL upload page. Every text that comes from a workbook is written with
// textContent (never innerHTML); the chart is SVG built element by element.
"use strict";

(function () {
  const settings = JSON.parse(document.getElementById("cc-settings").textContent);
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const PHASES = { forecast: "prévisionnel", final: "définitif" };
  const SEVERITY = { error: "erreur", warning: "avertissement", info: "information" };
  const SEVERITY_ORDER = { error: 0, warning: 1, info: 2 };
  const INDICATORS = [
    ["tco2e_per_hour", "t CO2e par heure de programme"],
    ["kgco2e_per_keur", "kg CO2e par k€ de budget"],
    ["tco2e_per_shooting_day", "t CO2e par jour de tournage"],
    ["tco2e_per_episode", "t CO2e par épisode"],
  ];
  const num = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1, minimumFractionDigits: 1 });
  const num2 = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 2, minimumFractionDigits: 2 });
  const num0 = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 0 });

  let currentFile = null;
  let currentReport = null;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function tonnes(kg) {
    if (typeof kg !== "number" || !isFinite(kg)) return "—";
    return (Math.abs(kg) < 10000 ? num2 : num).format(kg / 1000);
  }

  function tonnesShort(kg) {  // chart labels: short, never a long tail of digits
    const t = kg / 1000;
    if (t < 0.01) return "< 0,01";
    return (t >= 100 ? num0 : t >= 10 ? num : num2).format(t);
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text || "";
    status.className = "status" + (kind ? " " + kind : "");
  }

  function headers() {
    const token = $("token").value.trim();
    return token ? { Authorization: "Bearer " + token } : {};
  }

  function errorMessage(body, response) {
    if (body && body.error && body.error.message) return body.error.message;
    return "Le service a répondu " + response.status + " : réessayez.";
  }

  async function send(url, file) {
    const form = new FormData();
    form.append("file", file, file.name);
    return fetch(url, { method: "POST", body: form, headers: headers() });
  }

  async function analyse(file) {
    if (!file) return;
    currentFile = null;
    if (file.size > settings.maxUploadBytes) {
      setStatus("Fichier trop gros pour ce service (" + num0.format(file.size / 1048576) +
        " Mo) : la limite est de " + num0.format(settings.maxUploadBytes / 1048576) + " Mo.", "error");
      return;
    }
    setStatus("Analyse de « " + file.name + " »…", "busy");
    $("drop").classList.add("busy");
    let response, body;
    try {
      response = await send("/api/validate", file);
      body = await response.json().catch(() => null);
    } catch (e) {
      setStatus("Le service ne répond pas : vérifiez la connexion et réessayez.", "error");
      return;
    } finally {
      $("drop").classList.remove("busy");
    }
    if (body && body.status) {
      currentFile = file;
      currentReport = body;
      showReport(body);
      setStatus("");
    } else {
      setStatus(errorMessage(body, response), "error");
    }
  }

  function showReport(report) {
    $("result").hidden = false;
    const production = (report.workbook && report.workbook.production) || {};
    $("r-title").textContent = production.title || report.file;
    const meta = [report.file];
    if (production.work_type) meta.push(production.work_type);
    if (report.phase) meta.push("bilan " + (PHASES[report.phase] || report.phase));
    if (typeof production.budget_keur === "number") meta.push("budget " + num0.format(production.budget_keur) + " k€");
    if (typeof production.shooting_days === "number") meta.push(num0.format(production.shooting_days) + " jours de tournage");
    if (typeof production.duration_min === "number") meta.push(num0.format(production.duration_min) + " min");
    $("r-meta").textContent = meta.join(" · ");

    const badge = $("r-badge");
    const counts = report.counts || {};
    if (report.status === "rejected") {
      badge.textContent = "Refusé";
      badge.className = "badge rejected";
    } else if (report.status === "errors") {
      badge.textContent = "À corriger : " + counts.errors + " erreur(s)";
      badge.className = "badge errors";
    } else {
      badge.textContent = counts.warnings ? "Conforme, " + counts.warnings + " avertissement(s)" : "Conforme";
      badge.className = "badge ok";
    }

    const rejected = report.status === "rejected";
    $("rejection").hidden = !rejected;
    $("figures").hidden = rejected;
    const notOurs = (report.issues || []).some((i) => i.code === "NOT_CARBONCLAP_WORKBOOK");
    $("download").hidden = rejected || notOurs;
    if (rejected) {
      $("rejection-reason").textContent = report.rejection.reason;
      $("rejection-code").textContent = report.rejection.code;
    } else {
      showTotals(report);
      showIndicators(report.indicators || {});
      drawChart(report.by_poste || {});
    }
    showIssues(report.issues || []);
  }

  function showTotals(report) {
    const totals = report.total_kgco2e || {};
    const unc = report.uncertainty_kgco2e || {};
    for (const phase of ["forecast", "final"]) {
      const card = $("total-" + phase);
      card.querySelector(".value").textContent = tonnes(totals[phase]) + " t CO2e";
      card.querySelector(".uncertainty").textContent =
        typeof unc[phase] === "number" ? "± " + tonnes(unc[phase]) + " t (incertitude)" : "";
      card.classList.toggle("declared", report.phase === phase);
    }
  }

  function showIndicators(indicators) {
    const body = $("indicators").querySelector("tbody");
    body.replaceChildren();
    for (const [key, label] of INDICATORS) {
      const values = indicators[key];
      if (!values) continue;
      const row = el("tr");
      row.append(el("th", label));
      for (const phase of ["forecast", "final"]) {
        const v = values[phase];
        row.append(el("td", typeof v === "number" && isFinite(v) ? num.format(v) : "—"));
      }
      body.append(row);
    }
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawChart(byPoste) {
    const ids = Object.keys(settings.postes).filter((id) => id in byPoste)
      .concat(Object.keys(byPoste).filter((id) => !(id in settings.postes)));
    const width = 760, labelW = 220, valueW = 64, rowH = 42, barH = 14, top = 8;
    const height = top + ids.length * rowH + 4;
    let max = 0;
    for (const id of ids) for (const p of ["forecast", "final"]) {
      const v = byPoste[id][p];
      if (typeof v === "number" && v > max) max = v;
    }
    const scale = max > 0 ? (width - labelW - valueW) / max : 0;
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": "Émissions par poste, prévisionnel et définitif" });
    ids.forEach((id, i) => {
      const y = top + i * rowH;
      const label = (settings.postes[id] || id).split(" (")[0];
      chart.append(svg("text", { x: labelW - 10, y: y + barH + 4, "text-anchor": "end",
        class: "label" }, label));
      const values = ["forecast", "final"].map((phase) => {
        const v = byPoste[id][phase];
        return typeof v === "number" && isFinite(v) && v > 0 ? v : 0;
      });
      if (!values[0] && !values[1]) {
        chart.append(svg("text", { x: labelW + 2, y: y + barH + 4, class: "none" },
          "aucune émission"));
        return;
      }
      ["forecast", "final"].forEach((phase, j) => {
        const value = values[j];
        const by = y + j * (barH + 2);
        const bar = svg("rect", { x: labelW, y: by, height: barH, rx: 2,
          width: Math.max(value * scale, value > 0 ? 1 : 0), class: "bar " + phase });
        bar.append(svg("title", {}, label + " — " + PHASES[phase] + " : " + tonnes(value) + " t CO2e"));
        chart.append(bar);
        chart.append(svg("text", { x: labelW + value * scale + 6, y: by + barH - 3,
          class: "value" }, value ? tonnesShort(value) : "0"));
      });
    });
    $("chart").replaceChildren(chart);
  }

  function showIssues(issues) {
    const showInfo = $("show-info").checked;
    const sorted = issues.slice().sort((a, b) =>
      (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3));
    const shown = sorted.filter((i) => showInfo || i.severity !== "info");
    const infos = issues.filter((i) => i.severity === "info").length;
    const body = $("issues").querySelector("tbody");
    body.replaceChildren();
    for (const issue of shown) {
      const row = el("tr", null, "sev-" + issue.severity);
      row.append(el("td", SEVERITY[issue.severity] || issue.severity, "severity"));
      row.append(el("td", issue.sheet || "classeur"));
      row.append(el("td", issue.cell ? issue.cell.toUpperCase() : ""));
      row.append(el("td", issue.message));
      row.append(el("td", issue.code, "code"));
      body.append(row);
    }
    $("issues").hidden = shown.length === 0;
    $("no-issue").hidden = shown.length !== 0;
    $("issue-count").textContent = "(" + shown.length + (showInfo || !infos ? "" :
      " ; " + infos + " information(s) masquée(s)") + ")";
  }

  function filenameFrom(disposition, fallback) {
    const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
    if (star) {
      try { return decodeURIComponent(star[1]); } catch (e) { /* fall through */ }
    }
    const plain = /filename="([^"]+)"/i.exec(disposition || "");
    return plain ? plain[1] : fallback;
  }

  async function download() {
    if (!currentFile) return;
    const button = $("download");
    button.disabled = true;
    setStatus("Calcul du classeur…", "busy");
    try {
      const response = await send("/api/process", currentFile);
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        setStatus(errorMessage(body, response), "error");
        return;
      }
      const blob = await response.blob();
      const name = filenameFrom(response.headers.get("Content-Disposition"), "classeur-calcule.xlsx");
      const url = URL.createObjectURL(blob);
      const link = el("a");
      link.href = url;
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      setStatus("Classeur calculé téléchargé : « " + name + " ».", "done");
    } catch (e) {
      setStatus("Le service ne répond pas : vérifiez la connexion et réessayez.", "error");
    } finally {
      button.disabled = false;
    }
  }

  const drop = $("drop");
  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) analyse(file);
  });
  // a file dropped beside the zone must not make the browser leave the page
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) analyse(file);
    event.target.value = "";
  });
  $("download").addEventListener("click", download);
  $("show-info").addEventListener("change", () => {
    if (currentReport) showIssues(currentReport.issues || []);
  });
})();
