// SMART App Launch (EHR launch): the EHR opens this page with ?iss=...&launch=...; fhirclient discovers
// the EHR's authorization server and sends the browser there (PKCE S256 when the server offers it).
(async () => {
  const status = document.getElementById('status');
  const params = new URLSearchParams(window.location.search);
  if (!params.get('iss')) {
    status.textContent = 'This app is opened from the EHR (a card link or the app list): no EHR launch was given.';
    return;
  }
  try {
    const config = await (await fetch('config.json')).json();
    await FHIR.oauth2.authorize({ clientId: config.clientId, scope: config.scope, redirectUri: config.redirectUri });
  } catch (error) {
    status.textContent = 'The EHR launch failed: ' + error.message;
  }
})();
