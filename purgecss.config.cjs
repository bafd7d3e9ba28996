// Keeps only the Bootstrap rules the site's pages use (`make vendor` runs it; see Makefile).
// Class names are read as words from everything that can put them in a public page:
// our templates, the crispy-forms Bootstrap 5 templates (CRISPY_TEMPLATES, set by make),
// and the Python that builds HTML (form widgets, the Markdown renderer's tag list).
// The Django admin has its own CSS and is left out, as are emails (their styles are inline).
const crispy = process.env.CRISPY_TEMPLATES;
if (!crispy) {
  throw new Error("CRISPY_TEMPLATES must name crispy_bootstrap5's templates folder (run make vendor)");
}

module.exports = {
  content: [
    "templates/*.html",
    "templates/{articles,booking,clinic,includes,newsletter}/**/*.html",
    `${crispy}/**/*.html`,
    "{clinic,articles,booking,newsletter}/**/!(migrations)/*.py",
    "{clinic,articles,booking,newsletter}/*.py",
  ],
  safelist: {
    // Built in templates from a value: alert-{{ message.tags }} (error shows as danger).
    standard: [/^alert-(info|success|warning|danger|debug)$/],
  },
  // Custom properties no kept rule reads go too; keyframes and font faces are kept whole.
  variables: true,
  keyframes: false,
  fontFace: false,
};
