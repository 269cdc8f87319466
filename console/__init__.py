"""The web console (issue 14): server-rendered pages for DSO operators, aggregators and prosumers,
served by the VTN itself as an extension (`console.web.ConsoleExtension`)."""
