// Starts Swagger UI on /docs. It is a file of its own, not FastAPI's inline <script>, so that the
// page's Content-Security-Policy can allow scripts from this origin only (service/api/docs/).
"use strict";

const root = document.getElementById("swagger-ui");

SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  // FastAPI's own settings for its /docs, so that the page looks and works as it did.
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  // Never send the schema to swagger.io's online validator: the page talks to this origin only.
  validatorUrl: null,
});
