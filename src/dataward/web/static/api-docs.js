// Starts Swagger UI for /api/docs (served from the installed swagger-ui-bundle; no CDN, no inline script).
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("swagger-ui");
  // eslint-disable-next-line no-undef
  SwaggerUIBundle({ url: box.dataset.openapi, dom_id: "#swagger-ui", deepLinking: false });
});
