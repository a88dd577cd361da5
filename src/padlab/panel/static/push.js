// padlab panel: turn on Web Push alerts for this device (service worker + PushManager).
"use strict";

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - base64url.length % 4) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function enablePush(button, status) {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    status.textContent = "This browser has no Web Push here; on an iPad, open the panel from the Home Screen.";
    return;
  }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    status.textContent = "Notifications are not allowed for the panel.";
    return;
  }
  const registration = await navigator.serviceWorker.register("/sw.js");
  await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: keyBytes(button.dataset.key),
  });
  const body = new URLSearchParams({ csrf: button.dataset.csrf, subscription: JSON.stringify(subscription) });
  const response = await fetch("/push/subscribe", { method: "POST", body });
  status.textContent = response.ok ? "Alerts are on for this device." : "The panel refused the subscription.";
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("push-enable");
  if (button) {
    const status = document.getElementById("push-status");
    button.addEventListener("click", () => enablePush(button, status).catch((err) => {
      status.textContent = "Could not turn alerts on: " + err;
    }));
  }
});
