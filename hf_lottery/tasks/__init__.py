"""Tasks: GLUE and users' own data, the generated demo task, and the metrics of each task."""
