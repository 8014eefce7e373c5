// Typesets the formulas on every page (pymdownx.arithmatex marks them, KaTeX shipped with
// the site renders them: no CDN). document$ is Material's page-load observable.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
  });
});
