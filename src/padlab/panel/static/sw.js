// padlab panel's service worker: show padlab's alerts (Web Push) and open the panel when tapped.
"use strict";

self.addEventListener("push", (event) => {
  let data = { title: "padlab", body: "" };
  try {
    data = event.data ? event.data.json() : data;
  } catch (err) {
    data.body = event.data ? event.data.text() : "";
  }
  event.waitUntil(self.registration.showNotification("padlab: " + data.title, {
    body: data.body,
    tag: "padlab-" + data.title,
    icon: "/static/icon-192.png",
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow("/costs"));
});
